"""The dashboard's keys and panels in a real terminal (a tmux pane of a private tmux server), at
the sizes people use: the command's output, `q` twice, `?`, Home/End, one file, many children."""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from pathlib import Path

import pytest

from conftest import FSAUDIT
from test_live import pane  # noqa: F401 (the fixture: a tmux pane of a private tmux server)

SIZES = [(160, 45), (120, 30), (80, 24)]
LIVE_KEYS = "q stop tracing"
# The traced script waits here (a fifo) until the test has looked at the screen.
WAIT = "read _ < go"


def traced_script(pane, tmp_path: Path, size: tuple[int, int], script: str, *options: str,
                  job_control: bool = False):
    """fsaudit run -- bash -c script in a pane of that size, in tmp_path, with a TMPDIR of its own
    (where the output log goes); its exit status goes to status.txt. job_control: the pane's shell
    runs fsaudit as a job of its own, as an interactive shell does."""
    os.mkfifo(tmp_path / "go")
    (tmp_path / "tmpdir").mkdir()
    command = shlex.join([*FSAUDIT, "run", "--fail-on", "never", "--json", "report.json", *options,
                          "--", "bash", "-c", script])
    return pane(f"{'set -m; ' if job_control else ''}cd {shlex.quote(str(tmp_path))} && "
                f"TMPDIR=tmpdir {command}; echo $? > status.txt", *size)


def release(tmp_path: Path) -> None:
    """Lets the traced script go past its WAIT."""
    with open(tmp_path / "go", "w") as fifo:
        fifo.write("go\n")


@pytest.fixture(autouse=True)
def no_script_left_waiting(tmp_path):
    """A failed test leaves no traced script blocked at its WAIT (one left running by `q` would stay)."""
    yield
    try:
        fifo = os.open(tmp_path / "go", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:                     # no fifo, or nobody reading it
        return
    os.write(fifo, b"go\n")
    os.close(fifo)


def logs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmpdir").glob("fsaudit-output-*.log"))


def panel(screen: str, title: str) -> list[str]:
    """The rows inside the panel whose title starts with title, its header included."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if f"─ {title}" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("╰"))
    return [line.strip().strip("│").rstrip() for line in lines[start + 1:end]]


# 1. The command's output: a pane with its tail, `o`, and the log named or removed at the end.

@pytest.mark.parametrize("size", SIZES, ids=lambda size: "x".join(map(str, size)))
def test_the_output_panel_shows_the_latest_lines_and_o_hides_it(pane, tmp_path, size):
    script = ('for ((i = 1; i <= 60; i++)); do echo "line $i"; done; printf "\\033[1mbold\\033[0m \\tend\\r\\n"; '
              f"{WAIT}; echo finished")
    screen = traced_script(pane, tmp_path, size, script)
    shown = screen.wait_for(lambda s: "bold" in s)
    rows = panel(shown, "Output")
    # The latest lines, as the terminal would show them: no escape sequence, no carriage return.
    assert rows[-2:] == [" line 60", " bold    end"], shown
    assert " line 1" not in rows and len(rows) >= 1
    assert "\\e" not in shown and "\\r" not in shown
    assert len(shown.splitlines()) == size[1] and shown.splitlines()[-1].startswith(LIVE_KEYS), shown
    screen.keys("o")
    hidden = screen.wait_for(lambda s: "Output (" not in s)
    assert "line 60" not in hidden and "Findings (" in hidden
    screen.keys("o")
    screen.wait_for(lambda s: "Output (" in s)
    release(tmp_path)
    _, final = screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == "0", final
    # The run succeeded: the log is gone, and the last line says so.
    assert logs(tmp_path) == []
    assert re.search(r"fsaudit: the command's output \([\d.]+ \w+\) was removed: the run succeeded "
                     r"\(--keep-output keeps it\)", screen.joined()), final
    assert "line 60" not in final


@pytest.mark.parametrize("options, status", [(("--keep-output",), 0), ((), 3)], ids=["keep-output", "failed"])
def test_the_output_log_is_kept_and_named_when_asked_or_when_the_run_failed(pane, tmp_path, options, status):
    screen = traced_script(pane, tmp_path, (120, 30), f"echo one; echo two; exit {status}", *options)
    _, final = screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == str(status), final
    [log] = logs(tmp_path)
    assert log.read_text() == "one\ntwo\n"
    assert (log.stat().st_mode & 0o777) == 0o600
    named = re.search(r"fsaudit: the command's output \(8 B\) is in (\S+)", screen.joined())
    assert named and Path(tmp_path, named.group(1)).resolve() == log.resolve(), final


def test_no_output_leaves_no_log(pane, tmp_path):
    screen = traced_script(pane, tmp_path, (80, 24), "exit 0", "--keep-output")
    _, final = screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == "0", final
    assert logs(tmp_path) == [] and "command output: none" in final
    assert "the command's output" not in final


# 2. `q` stops tracing at once; a second `q` leaves the command running, untouched.

@pytest.mark.parametrize("size", SIZES, ids=lambda size: "x".join(map(str, size)))
def test_q_then_q_leaves_the_command_running_untraced_with_its_output_and_no_signal(pane, tmp_path, size):
    # The command notes any signal it gets, and whether its stdout and stdin still work.
    traps = "; ".join(f"trap 'echo {name} >> signals.txt' {name}" for name in ("HUP", "INT", "TERM", "PIPE", "CONT"))
    script = (f"{traps}; echo started; {WAIT}; echo 'after fsaudit left' || echo stdout >> broken.txt; "
              "cat > /dev/null || echo stdin >> broken.txt; echo done > done.txt")
    screen = traced_script(pane, tmp_path, size, script, job_control=True)
    screen.wait_for(lambda s: "started" in s)
    screen.keys("q")
    stopped = screen.wait_for(lambda s: "tracing stopped" in s)
    assert stopped.splitlines()[-1] == "tracing stopped; the command runs on untraced | w wait for it | q leave"
    screen.keys("q")
    _, final = screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == "0", final
    report = json.loads((tmp_path / "report.json").read_text())
    pid = report["target"]["pid"]
    assert report["target"]["exit"] is None
    flat = screen.joined()
    assert f"fsaudit: pid {pid} runs on untraced" in flat, final
    # fsaudit has gone; the command has not, and still writes to its log.
    with open(f"/proc/{pid}/stat") as stat:
        assert stat.read().rsplit(")", 1)[1].split()[0] in "SR", "the command did not run on"
    [log] = logs(tmp_path)
    assert f"fsaudit: the command's output goes on into {log}" in flat, final
    release(tmp_path)
    deadline = time.monotonic() + 30
    while not (tmp_path / "done.txt").exists():
        assert time.monotonic() < deadline, "the command never finished"
        time.sleep(0.1)
    while "after fsaudit left" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    assert log.read_text() == "started\nafter fsaudit left\n"
    assert not (tmp_path / "signals.txt").exists(), (tmp_path / "signals.txt").read_text()
    assert not (tmp_path / "broken.txt").exists(), (tmp_path / "broken.txt").read_text()


def test_q_then_w_waits_for_the_command_and_exits_with_its_status(pane, tmp_path):
    screen = traced_script(pane, tmp_path, (80, 24), f"echo started; {WAIT}; exit 5")
    screen.wait_for(lambda s: "started" in s)
    screen.keys("q")
    screen.wait_for(lambda s: "tracing stopped; the command runs on untraced" in s)
    screen.keys("w")
    waiting = screen.wait_for(lambda s: "tracing stopped; waiting for the command" in s)
    assert waiting.splitlines()[-1].endswith("(Ctrl-C reaches it) | q leave")
    release(tmp_path)
    _, final = screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == "5", final
    assert "runs on untraced; fsaudit did not wait" not in final


def test_with_inject_q_waits_for_the_command_whose_filter_fsaudit_answers(pane, tmp_path):
    screen = traced_script(pane, tmp_path, (120, 30), f"echo started; {WAIT}; exit 4", "--inject", "fsync=EIO@1")
    screen.wait_for(lambda s: "started" in s)
    screen.keys("q")
    waiting = screen.wait_for(lambda s: "tracing stopped" in s)
    assert waiting.splitlines()[-1] == ("tracing stopped; waiting for the command: its --inject filter needs "
                                        "fsaudit (Ctrl-C reaches it)")
    screen.keys("q")                    # not a way out here: the line stays, and so does fsaudit
    screen.keys("p")
    screen.wait_for(lambda s: s.splitlines()[-1].startswith("PAUSED tracing stopped; waiting"))
    release(tmp_path)
    _, final = screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == "4", final


# 3. `?`, Home/End, one file, many short-lived children.

@pytest.mark.parametrize("size", SIZES, ids=lambda size: "x".join(map(str, size)))
def test_question_mark_shows_the_keys_and_one_file_leaves_no_blank_rows(pane, tmp_path, size):
    screen = traced_script(pane, tmp_path, size, f"printf data > one.txt; {WAIT}")
    shown = screen.wait_for(lambda s: "Files (1," in s)
    files = panel(shown, "Files")
    assert len(files) == 2 and files[0].split()[0] == "path" and files[1].split()[0] == "one.txt", shown
    assert shown.splitlines()[-1].startswith(LIVE_KEYS) and "? keys" in shown.splitlines()[-1]
    screen.keys("?")
    keys = screen.wait_for(lambda s: "Keys (? closes)" in s)
    rows = panel(keys, "Keys")
    assert [row.split()[0] for row in rows] == ["q", "then", "then", "f", "p", "o", "up/down,", "PgUp/PgDn",
                                                "Home/End,", "?", "Ctrl-C"], keys
    assert all("…" not in row for row in rows), keys
    assert "Files (" not in keys
    screen.keys("?")
    screen.wait_for(lambda s: "Files (" in s)
    release(tmp_path)
    screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == "0"


@pytest.mark.parametrize("size", SIZES, ids=lambda size: "x".join(map(str, size)))
def test_home_and_end_jump_to_the_first_and_last_files(pane, tmp_path, size):
    # fNN gets NN writes: the busiest, f60, is first; f01 last.
    script = ('for ((i = 1; i <= 60; i++)); do printf -v name "f%02d" $i; '
              'for ((j = 0; j < i; j++)); do printf x; done > $name; done; ' + WAIT)
    screen = traced_script(pane, tmp_path, size, script)

    def names(s: str) -> list[str]:
        return [row.split()[0] for row in panel(s, "Files")[1:]]

    top = screen.wait_for(lambda s: "Files (60," in s and "f60" in s)
    assert names(top)[0] == "f60" and "f01" not in names(top)
    screen.keys("End")
    bottom = screen.wait_for(lambda s: "f01" in names(s))
    assert names(bottom)[-1] == "f01" and "f60" not in names(bottom)
    screen.keys("Home")
    again = screen.wait_for(lambda s: "f60" in names(s))
    assert names(again)[0] == "f60" and "f01" not in names(again)
    release(tmp_path)
    screen.frames_until_exit()


@pytest.mark.parametrize("size", SIZES, ids=lambda size: "x".join(map(str, size)))
def test_exited_children_without_findings_are_folded_into_one_line(pane, tmp_path, size):
    script = f"for ((i = 0; i < 80; i++)); do /bin/true; done; printf x > a.tmp; mv a.tmp a.txt; {WAIT}"
    screen = traced_script(pane, tmp_path, size, script)
    shown = screen.wait_for(lambda s: "(1 running, 81 exited)" in s and "80 exited" in s)
    rows = panel(shown, "Processes")
    # The header, the running shell, mv (its rename is a finding), the 80 folded.
    assert len(rows) == 4 and "Processes (1 running, 81 exited)" in shown, shown
    assert "bash -c" in rows[1] and "running" in rows[1]
    assert "mv a.tmp a.txt" in rows[2] and "exit 0" in rows[2]
    assert rows[3].split()[:2] == ["80", "exited"] and rows[3].endswith("exit 0")
    release(tmp_path)
    _, final = screen.frames_until_exit()
    # The settled screen folds them too, with their totals.
    settled = panel(final, "Processes")
    assert len(settled) == 4 and settled[3].split()[:2] == ["80", "exited"] and settled[3].endswith("exit 0"), final


def test_folding_keeps_the_first_process_and_those_with_findings_and_counts_each_ending():
    from fsaudit.analysis.snapshot import ProcessRow
    from fsaudit.outputs.live.panels import Folded, process_entries

    def process(pid: int, exited: bool = True, code: int | None = 0, signal: int | None = None) -> ProcessRow:
        return ProcessRow(pid, (f"p{pid}",), None, None, None, pid, 1, 0, exited, code, signal)

    command = process(1)                        # met first: the command, exited
    children = [process(10 + n, code=n % 2) for n in range(5)] + [process(20, code=None, signal=9)]
    entries = process_entries([command, process(2, exited=False), process(3), *children], flagged={3})
    assert [getattr(entry, "pid", None) for entry in entries] == [2, 3, 1, None]
    assert entries[-1] == Folded(6, (("exit 0", 3), ("exit 1", 2), ("SIGKILL", 1)), sum(range(10, 15)) + 20, 6, 0)
    # One exited child alone is not folded.
    assert [entry.pid for entry in process_entries([command, process(5)], flagged=set())] == [5, 1]
