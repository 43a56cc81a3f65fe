"""The live view: the dashboard in a real terminal (a tmux pane of a private
tmux server), and the progress line when fsaudit's output goes to pipes."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FSAUDIT, WAIT, fsaudit
from fsaudit.analysis.engine import Engine
from fsaudit.analysis.snapshot import file_state
from fsaudit.outputs.live import ProgressLine, format_bytes, shorten_path

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
LIVE_KEYS = "q stop tracing"            # the dashboard's key line; the final screen has none
CHUNK = 4096


class Pane:
    """A WIDTHxHEIGHT terminal running one shell command, on a tmux server of
    its own (its own socket), kept on screen after the command exits."""

    def __init__(self, tmp_path: Path, command: str, width: int = 150, height: int = 45) -> None:
        self.width, self.height = width, height
        self.socket = str(tmp_path / "tmux.sock")
        config = tmp_path / "tmux.conf"
        config.write_text("set -g remain-on-exit on\n")
        self.tmux("-f", str(config), "new-session", "-d", "-x", str(width), "-y", str(height), "-s", "live", command)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True, capture_output=True, text=True).stdout

    def capture(self) -> str:
        """The screen, and the lines scrolled off it (tmux's "Pane is dead" line scrolls one)."""
        return self.tmux("capture-pane", "-p", "-S", "-", "-t", "live")

    def dead(self) -> bool:
        return self.tmux("display-message", "-p", "-t", "live", "#{pane_dead}").strip() == "1"

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "live", *keys)

    def joined(self) -> str:
        """capture(), with the lines the terminal wrapped joined again."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "live")

    def screen(self) -> str:
        """The visible screen only."""
        return self.tmux("capture-pane", "-p", "-t", "live")

    def wait_for(self, found, timeout_s: float = 60) -> str:
        """The visible screen once found(screen) holds (polled every 0.1 s)."""
        deadline = time.monotonic() + timeout_s
        while True:
            shown = self.screen()
            if found(shown):
                return shown
            assert time.monotonic() < deadline and not self.dead(), "never shown:\n" + shown
            time.sleep(0.1)

    def frames_until_exit(self, timeout_s: float = 60) -> tuple[list[str], str]:
        """Captures every 0.1 s while the command runs, and the final screen."""
        frames, deadline = [], time.monotonic() + timeout_s
        while not self.dead():
            assert time.monotonic() < deadline, "fsaudit did not finish:\n" + self.capture()
            frames.append(self.capture())
            time.sleep(0.1)
        return frames, self.capture()

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def pane(bpf, tmp_path):
    if shutil.which("tmux") is None:
        if os.environ.get("FSAUDIT_REQUIRE_BPF") == "1":
            pytest.fail("the dashboard tests need tmux (make test-tools installs it)")
        pytest.skip("tmux is not installed")
    panes: list[Pane] = []

    def open_(command: str, width: int = 150, height: int = 45) -> Pane:
        panes.append(Pane(tmp_path, command, width, height))
        return panes[-1]

    yield open_
    for opened in panes:
        opened.close()


def traced_in_pane(pane, tmp_path: Path, *fsaudit_args: str) -> Pane:
    """fsaudit run in the pane, in tmp_path; afterwards its exit status and the terminal's modes go to files."""
    command = shlex.join([*FSAUDIT, "run", "--fail-on", "never", "--json", "report.json", *fsaudit_args])
    return pane(f"cd {shlex.quote(str(tmp_path))} && {command}; echo $? > status.txt; stty -a > stty.txt")


def unsynced_of(frame: str, name: str) -> int | None:
    """The unsynced bytes the Files panel shows for the row whose path is name."""
    for line in frame.splitlines():
        cells = line.strip("│ ").split()
        if cells and cells[0] == name:
            size = re.search(r"(\d+(?:\.\d+)?) (B|KiB|MiB|GiB)\b", line)
            return round(float(size.group(1)) * UNITS[size.group(2)]) if size else None
    return None


def test_dashboard_shows_the_save_as_it_happens_then_settles_into_the_summary(pane, build, tmp_path):
    screen = traced_in_pane(pane, tmp_path, "--keep-output", "--", str(build("slowsave")), "12", "250", "2000")
    frames, final = screen.frames_until_exit()
    live = [frame for frame in frames if LIVE_KEYS in frame]
    assert live, "the dashboard never showed:\n" + (frames[-1] if frames else final)

    # Growing unsynced bytes on the temp file, as its writes arrive.
    growth = [n for n in (unsynced_of(frame, "data.json.tmp") for frame in live) if n is not None]
    assert growth == sorted(growth) and len(set(growth)) >= 3, growth
    assert all(n % CHUNK == 0 and 0 < n <= 12 * CHUNK for n in growth), growth

    # After the rename, while the command still runs: the FS101 finding, and
    # the renamed file marked.
    after = [frame for frame in live if "FS101" in frame]
    assert after, "no live frame showed FS101:\n" + live[-1]
    finding = next(line for line in after[-1].splitlines() if "FS101" in line)
    assert "error" in finding and "renamed" in finding
    renamed = next(line for line in after[-1].splitlines() if "data.json ← data.json.tmp" in line)
    assert "dirty" in renamed and "48.0 KiB" in renamed and renamed.rstrip(" │").endswith("!")

    # The final screen: the settled dashboard, then the text summary.
    assert LIVE_KEYS not in final
    assert "exit 0" in final
    assert "fsaudit: 1 error" in final and "FS101 rename-unsynced-data" in final
    # The command's output went to the log file the dashboard named, not to the screen.
    assert "chunk 1 of 12" not in final
    log = Path(re.search(r"command output: (\S+\.log)", final).group(1))
    assert log.read_text() == "".join(f"chunk {i} of 12\n" for i in range(1, 13)) + "renamed\ndone\n"
    log.unlink()
    # The terminal is back in its normal modes, and fsaudit exited with the command's status.
    modes = (tmp_path / "stty.txt").read_text().split()
    assert "icanon" in modes and "echo" in modes
    assert (tmp_path / "status.txt").read_text().strip() == "0"


def test_q_stops_tracing_and_the_command_finishes_untraced(pane, build, tmp_path):
    chunks = 40
    screen = traced_in_pane(pane, tmp_path, "--keep-output", "--", str(build("slowsave")), str(chunks), "100", "0")
    deadline = time.monotonic() + 30
    while not (unsynced_of(screen.capture(), "data.json.tmp") or 0) >= 2 * CHUNK:
        assert time.monotonic() < deadline and not screen.dead(), screen.capture()
        time.sleep(0.1)
    screen.keys("q")
    frames, final = screen.frames_until_exit()
    assert any("tracing stopped; the command runs on untraced" in frame for frame in frames)
    # The screen settled into the state at `q`: the temp file, not yet renamed.
    assert LIVE_KEYS not in final
    assert unsynced_of(final, "data.json.tmp") >= 2 * CHUNK
    report = json.loads((tmp_path / "report.json").read_text())
    # Tracing ended early: part of the writes, no rename, no exit.
    seen = next(f for f in report["files"] if f["path"].endswith("/data.json.tmp"))
    assert 2 * CHUNK <= seen["bytes_written"] < chunks * CHUNK
    assert "FS101" not in [f["rule"] for f in report["findings"]]
    assert report["target"]["exit"] is None
    # The command itself ran to its end.
    assert (tmp_path / "data.json").stat().st_size == chunks * CHUNK
    log = Path(re.search(r"command output: (\S+\.log)", final).group(1))
    assert log.read_text().endswith("renamed\ndone\n")
    log.unlink()
    assert (tmp_path / "status.txt").read_text().strip() == "0"


def test_q_in_attach_detaches_and_the_process_runs_on(pane, build, tmp_path):
    # It writes until killed: still running at the detach however slowly the probe loads.
    writer = subprocess.Popen([str(build("slowsave")), "0", "100"], cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        command = shlex.join([*FSAUDIT, "attach", "--json", "report.json", str(writer.pid)])
        screen = pane(f"cd {shlex.quote(str(tmp_path))} && {command}; echo $? > status.txt")
        deadline = time.monotonic() + WAIT     # the probe's load included
        while not (unsynced_of(screen.capture(), "data.json.tmp") or 0) >= CHUNK:
            assert time.monotonic() < deadline and not screen.dead(), screen.capture()
            time.sleep(0.1)
        screen.keys("q")
        _, final = screen.frames_until_exit()
        assert writer.poll() is None, "detaching ended the process"
        assert "q detach" not in final and " ".join(writer.args) in final
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["mode"] == "attach" and report["files"][0]["path"].endswith("/data.json.tmp")
        assert (tmp_path / "status.txt").read_text().strip() == "0"
    finally:
        writer.kill()
        writer.wait()


@pytest.fixture
def tiny_tmpdir(tmp_path):
    """A 64 KiB tmpfs, to be the $TMPDIR that fills up."""
    where = tmp_path / "tiny"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        # Lazily: a process of a failed test may still hold the log open.
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_a_full_tmpdir_drops_the_command_output_and_the_command_still_finishes(pane, tiny_tmpdir, tmp_path):
    size = 2 * 1024 ** 2                # far more than fits in the tmpfs (or a pty's buffer)
    command = shlex.join([*FSAUDIT, "run", "--live", "--fail-on", "never", "--json", "report.json", "--keep-output",
                          "--", "head", "-c", str(size), "/dev/zero"])
    screen = pane(f"cd {shlex.quote(str(tmp_path))} && TMPDIR={shlex.quote(str(tiny_tmpdir))} {command}; "
                  "echo $? > status.txt")
    _, final = screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == "0", final
    [log] = tiny_tmpdir.glob("fsaudit-output-*.log")
    logged = log.stat().st_size
    assert 0 < logged < size
    report = json.loads((tmp_path / "report.json").read_text())
    dropped = [w for w in report["warnings"] if w.startswith("command output:")]
    assert dropped == [f"command output: {size - logged:,} bytes could not be written to {log} "
                       "(No space left on device)"], report["warnings"]
    # The settled dashboard's status line said so too (wrapped to the pane's width).
    assert re.search(rf"command output:\s+{re.escape(str(log))} \([\d.]+ KiB, [\d.]+ MiB dropped: "
                     r"No space left on device\)", final), final


def test_no_log_file_at_all_the_command_output_is_still_drained(monkeypatch):
    """mkstemp fails ($TMPDIR and every fallback unusable): the pty is read to its end all the same."""
    from fsaudit.outputs.live import command_output as live

    monkeypatch.setattr(live.tempfile, "tempdir", "/nonexistent/fsaudit-tmp")
    output = live.CommandOutput(os.terminal_size((80, 24)), stdin_is_screen=False)
    assert output.path is None
    size = 1024 ** 2
    child = subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdout=output.slave)
    output.command_started()
    assert child.wait(timeout=60) == 0
    output.finish()
    assert not output.thread.is_alive()
    assert output.bytes == 0 and output.dropped == size
    assert output.dropped_message() == (f"command output: {size:,} bytes could not be written "
                                        "(cannot create a log in /nonexistent/fsaudit-tmp: No such file or directory)")
    assert output.status() == ("command output: not logged (0 B, 1.0 MiB dropped: "
                               "cannot create a log in /nonexistent/fsaudit-tmp: No such file or directory)")


def test_not_live_into_pipes_a_progress_line_and_no_escape_codes(bpf, build, tmp_path):
    result = fsaudit("run", "--no-live", "--fail-on", "never", "-o", "summary.txt",
                     "--", str(build("slowsave")), "12", "250", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    progress = result.stderr.splitlines()
    line = re.compile(r"fsaudit: tracing \d+\.\d s: [\d,]+ events?, [\d,]+ files?, [\d,]+ findings?")
    assert progress and all(line.fullmatch(text) for text in progress), result.stderr
    assert "\r" not in result.stderr
    summary = (tmp_path / "summary.txt").read_text()
    assert "FS101 rename-unsynced-data" in summary
    assert "\x1b" not in result.stdout + result.stderr + summary


def test_the_progress_line_says_when_analysis_outlasts_tracing():
    class Pipe(io.StringIO):
        def isatty(self) -> bool:
            return False

    engine, stream = Engine(), Pipe()
    for n in range(3):
        engine.feed({"t": 0.0, "pid": 1, "tid": 1, "syscall": "fsync", "fd": 3, "ret": 0})
    view = ProgressLine(engine, stream)
    view.start(0)
    view.due = 0.0             # a progress line is due at every call
    view.tick()
    view.due = 0.0
    view.catch_up()
    lines = stream.getvalue().splitlines()
    assert re.fullmatch(r"fsaudit: tracing \d+\.\d s: 3 events, 0 files, 0 findings", lines[0]), lines
    assert re.fullmatch(r"fsaudit: tracing ended, analysing \d+\.\d s: 3 events, 0 files, 0 findings", lines[1]), lines


def test_a_short_run_has_no_progress_line_and_no_dashboard_into_a_pipe(bpf, tmp_path):
    result = fsaudit("run", "--", "true", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == "No findings.\n"


def test_live_without_a_terminal_is_a_usage_error(bpf, tmp_path):
    result = fsaudit("run", "--live", "--", "true", cwd=tmp_path, start_new_session=True)
    assert result.returncode == 2
    assert result.stderr == "fsaudit: --live: there is no terminal to draw the dashboard on\n"


# The pieces the dashboard draws, without a terminal.

@pytest.mark.parametrize("path, width, cwd, shown", [
    ("/srv/app/data.json", 40, "/srv/app", "data.json"),
    ("/srv/app/db/data.json", 40, "/srv/app", "db/data.json"),
    ("/srv/app/data.json", 40, "/", "/srv/app/data.json"),
    ("/var/lib/service/state/journal/0001.log", 24, None, "…/state/journal/0001.log"),
    ("/var/lib/service/state/journal/0001.log", 10, None, "…/0001.log"),
    ("/var/lib/a-very-long-file-name.log", 10, None, "…-name.log"),
])
def test_paths_are_shortened_to_the_column(path, width, cwd, shown):
    assert shorten_path(path, width, cwd) == shown
    assert len(shown) <= width


def test_file_states_come_from_the_engine():
    engine = Engine()

    def feed(syscall: str, **fields) -> None:
        engine.feed({"t": 0.0, "pid": 1, "tid": 1, "syscall": syscall, "ret": 0, **fields})

    feed("openat", path="/d/a.tmp", kind="file", flags=["O_WRONLY", "O_CREAT"], ret=3, fd=3, created=True)
    state = engine.files["/d/a.tmp"]
    assert file_state(state) == "clean"
    feed("write", path="/d/a.tmp", kind="file", fd=3, ret=100, calls=2, bytes=100)
    assert file_state(state) == "dirty" and state.dirty_bytes == 100
    assert engine.processes[1].syscalls == 3
    feed("fsync", path="/d/a.tmp", kind="file", fd=3, latency_us=700)
    assert file_state(state) == "synced" and state.sync_latencies_us == [700]
    feed("rename", path="/d/a.tmp", path2="/d/a")
    assert engine.files["/d/a"] is state and file_state(state) == "renamed" and state.renamed_from == "/d/a.tmp"
    feed("unlink", path="/d/a")
    assert file_state(state) == "deleted"


def test_byte_counts_read_as_binary_units():
    assert [format_bytes(n) for n in (0, 1023, 1024, 49152, 5 * 1024 ** 3)] == \
        ["0 B", "1023 B", "1.0 KiB", "48.0 KiB", "5.0 GiB"]


def test_names_from_the_traced_program_are_escaped_on_the_dashboard(tmp_path):
    """A file or process named with ESC sequences and newlines cannot drive the terminal."""
    from types import SimpleNamespace

    from rich.console import Console

    from fsaudit.analysis.config import EngineConfig
    from fsaudit.outputs.live import Dashboard

    evil = "\x1b[2J\x1b[31mowned\nFS000"
    engine = Engine()
    feed = [("exec", {"path": f"/usr/bin/{evil}", "argv": [evil, "--x"]}),
            ("openat", {"path": f"/d/{evil}.tmp", "kind": "file", "flags": ["O_WRONLY", "O_CREAT"], "ret": 3,
                        "fd": 3, "created": True}),
            ("write", {"path": f"/d/{evil}.tmp", "kind": "file", "fd": 3, "ret": 100, "calls": 1, "bytes": 100}),
            ("rename", {"path": f"/d/{evil}.tmp", "path2": f"/d/{evil}"})]
    for t, (syscall, fields) in enumerate(feed):
        engine.feed({"t": t / 1000, "pid": 1, "tid": 1, "syscall": syscall, "ret": 0, **fields})
    assert engine.findings, "the rename of unsynced data is a finding that names the file"
    session = SimpleNamespace(engine=engine, mode="run", header={"argv": [evil]},
                              config=EngineConfig(include=[f"/d/{evil}*"]))
    with open(os.devnull, "w") as screen:
        dashboard = Dashboard(session, screen, None, "/")
    console = Console(file=io.StringIO(), width=150, color_system=None, force_terminal=False)
    for part in (dashboard._process_rows(10, 150), dashboard._process_rows(10, 150, totals=True),
                 dashboard._file_rows(10, 150), dashboard._findings_panel(engine.findings, 5, 150),
                 dashboard._status()):
        console.print(part)
    shown = console.file.getvalue()
    assert "\x1b" not in shown and "\nFS000" not in shown
    escaped = r"\e[2J\e[31mowned\nFS000"
    assert f"{escaped} --x" in shown                      # the process
    assert f"/d/{escaped} ← {escaped}.tmp" in shown       # the file, renamed
    assert f"scope: /d/{escaped}*" in shown
    finding = next(line for line in shown.splitlines() if engine.findings[0].rule in line)
    assert escaped in finding


def test_a_file_named_with_escape_sequences_shows_escaped_in_a_real_terminal(pane, tmp_path):
    script = 'printf data > "$(printf "evil\\033[7mname\\033[2J")"'
    screen = traced_in_pane(pane, tmp_path, "--live", "--", "sh", "-c", script)
    _, final = screen.frames_until_exit()
    assert (tmp_path / "status.txt").read_text().strip() == "0", final
    assert (tmp_path / "evil\x1b[7mname\x1b[2J").read_text() == "data"
    # The settled Files panel names it, escaped: the terminal neither cleared nor went reverse-video.
    # (The Processes panel names the shell, whose argv holds the name's printf form.)
    row = next((line for line in final.splitlines() if "evil" in line and "│" in line and "dirty" in line), None)
    assert row is not None and r"evil\e[7mname\e[2J" in row, final
