"""fsaudit attach with several processes (PID and -p PID, repeatable): every one pinned
before the tracer loads, every tree in one report, and one bad PID fails them all
before anything is traced."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from conftest import FSAUDIT, ROOT, fsaudit
from test_attach import WAIT, children, has_bpf_program, holds_pidfd_of, kill_tree, read_until

# A shell whose child, running when fsaudit attaches, saves NAME.dat the naive way once
# it reads "go" (stdin kept on fd 3: a background list's own stdin is /dev/null).
SAVER = "exec 3<&0; (read go <&3; echo data > {name}.tmp; mv {name}.tmp {name}.dat) & echo ready; wait"


def start_saver(name: str, cwd: Path) -> subprocess.Popen:
    cwd.mkdir()
    proc = subprocess.Popen(["sh", "-c", SAVER.format(name=name)], cwd=cwd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline() == "ready\n"
    return proc


def attach(pid_args: list[str], tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([*FSAUDIT, "attach", *pid_args, "--no-live", "--fail-on", "never",
                             "--events", str(tmp_path / "attach.jsonl"), "--json", str(tmp_path / "r.json")],
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_several_processes_are_traced_at_once_until_every_tree_has_exited(bpf, tmp_path):
    one, two = start_saver("one", tmp_path / "a"), start_saver("two", tmp_path / "b")
    try:
        (one_child,), (two_child,) = children(one.pid), children(two.pid)
        proc = attach([str(one.pid), "-p", str(two.pid)], tmp_path)     # the positional PID and -p together
        said = read_until(proc, "existing descendant")
        for saver in (one, two):     # only now do they save: all of it traced
            saver.stdin.write("go\n")
            saver.stdin.close()
        _, rest = proc.communicate(timeout=WAIT)      # ends by itself once both trees have exited
    finally:
        kill_tree(one)
        kill_tree(two)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, said + rest.decode()
    assert f"fsaudit: attached to pids {one.pid}, {two.pid} and 2 existing descendants" in said
    report = json.loads((tmp_path / "r.json").read_text())
    processes = {p["pid"]: p for p in report["processes"]}
    assert processes[one_child]["ppid"] == one.pid and processes[two_child]["ppid"] == two.pid
    assert report["target"]["pid"] == one.pid and report["target"]["pids"] == [one.pid, two.pid]
    assert report["target"]["adopted"] == 4
    renamed = {f["path"] for f in report["findings"] if f["rule"] == "FS101"}
    assert renamed == {str(tmp_path / "a" / "one.tmp"), str(tmp_path / "b" / "two.tmp")}
    jsonschema.Draft202012Validator(json.loads((ROOT / "docs" / "report.schema.json").read_text())).validate(report)


@pytest.mark.parametrize("parent_first", [True, False])
def test_a_process_given_twice_or_inside_another_tree_is_traced_once(parent_first, bpf, tmp_path):
    one = start_saver("one", tmp_path / "a")
    try:
        (child,) = children(one.pid)
        given = [one.pid, child] if parent_first else [child, one.pid]
        proc = attach(["-p", str(given[0]), "-p", str(given[1]), "-p", str(given[0])], tmp_path)
        said = read_until(proc, "existing descendant")
        one.stdin.write("go\n")
        one.stdin.close()
        _, rest = proc.communicate(timeout=WAIT)
    finally:
        kill_tree(one)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, said + rest.decode()
    assert f"fsaudit: attached to pids {given[0]}, {given[1]} and 0 existing descendants" in said
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["target"]["pids"] == given and report["target"]["adopted"] == 2
    events = [json.loads(line) for line in (tmp_path / "attach.jsonl").read_text().splitlines()[1:-1]]
    assert sorted(e["pid"] for e in events if e["syscall"] == "adopt") == sorted(given)


def exited_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


@pytest.mark.parametrize("bad_first", [True, False])
def test_one_pid_that_cannot_be_attached_to_fails_them_all_before_anything_is_traced(bad_first, tmp_path):
    alive = subprocess.Popen(["sleep", "60"])
    try:
        bad = exited_pid()
        pids = [bad, alive.pid] if bad_first else [alive.pid, bad]
        result = fsaudit("attach", "-p", str(pids[0]), "-p", str(pids[1]), "--json", str(tmp_path / "r.json"),
                         "--events", str(tmp_path / "attach.jsonl"), cwd=tmp_path)
        assert alive.poll() is None
    finally:
        alive.kill()
        alive.wait()
    assert result.returncode == 2
    assert result.stderr == f"fsaudit: no process with pid {bad}\n"
    assert list(tmp_path.iterdir()) == []


def test_no_pid_at_all_is_a_usage_error(tmp_path):
    result = fsaudit("attach", "--json", str(tmp_path / "r.json"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "fsaudit: no process to attach to: give a PID (or -p PID, repeatable)\n"
    assert list(tmp_path.iterdir()) == []


def test_one_of_several_exiting_while_fsaudit_loads_ends_the_attach_and_writes_nothing(bpf, tmp_path):
    first, second = subprocess.Popen(["sleep", "60"]), subprocess.Popen(["sleep", "60"])
    try:
        for _ in range(3):
            proc = attach(["-p", str(first.pid), "-p", str(second.pid)], tmp_path)
            deadline = time.monotonic() + WAIT
            while not holds_pidfd_of(proc.pid, second.pid):     # pinned after the first
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "fsaudit never pinned the second process"
                time.sleep(0.005)
            proc.send_signal(signal.SIGSTOP)
            if not has_bpf_program(proc.pid):
                break
            proc.kill()
            proc.wait()
        else:
            pytest.fail("fsaudit loaded its probe before it could be stopped, 3 times")
        second.kill()
        second.wait()
        proc.send_signal(signal.SIGCONT)
        _, stderr = proc.communicate(timeout=WAIT)
        assert first.poll() is None
    finally:
        for p in (first, second):
            p.kill()
            p.wait()
    assert proc.returncode == 2
    assert stderr.decode() == f"fsaudit: pid {second.pid} exited while fsaudit was loading; nothing was traced\n"
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "attach.jsonl").exists()
