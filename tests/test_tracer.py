"""The event stream of real programs under the real tracer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from conftest import WAIT, attach_while_running, fsaudit


def test_write_storm_arrives_aggregated_with_exact_totals(trace, build, tmp_path):
    t = trace([str(build("story")), "storm", "100000"])
    assert t.returncode == 0, t.stderr
    path = str(tmp_path / "storm.dat")
    opens = t.of("openat", path=path)
    assert opens and opens[0]["flags"] == ["O_WRONLY", "O_CREAT", "O_TRUNC"]
    runs = t.of("write", path=path)
    assert sum(r["calls"] for r in runs) == 100000
    assert sum(r["bytes"] for r in runs) == 6400000
    assert len(runs) <= 10
    assert t.of("fsync", path=path)[0]["ret"] == 0
    assert t.of("fdatasync", path=path)[0]["ret"] == 0
    assert [e["ret"] for e in t.of("fsync", kind="pipe")] == ["EINVAL"]
    assert t.report["counts"]["lost_events"] == 0


def test_names_and_dirfd_relative_calls_resolve_to_absolute_paths(trace, build, tmp_path):
    t = trace([str(build("story")), "names"])
    d = str(tmp_path)
    opened = t.of("openat", path=f"{d}/a.txt")[0]
    assert opened["flags"] == ["O_WRONLY", "O_CREAT", "O_EXCL"]
    # Renamed away before the resolver could stat it: O_EXCL alone says it was created.
    assert opened["created"] is True and "existed" not in opened
    assert t.of("rename", path=f"{d}/a.txt", path2=f"{d}/b.txt")[0]["ret"] == 0
    assert t.of("link", path=f"{d}/b.txt", path2=f"{d}/c.txt")
    assert t.of("unlink", path=f"{d}/b.txt")
    assert t.of("mkdir", path=f"{d}/sub")
    assert t.of("openat", path=f"{d}/sub/rel.txt")[0]["flags"] == ["O_WRONLY", "O_CREAT", "O_APPEND"]
    assert t.of("renameat", path=f"{d}/sub/rel.txt", path2=f"{d}/moved.txt")
    assert t.of("fsync", path=f"{d}/sub", kind="dir")


def test_dup_aliases_resolve_to_the_same_file(trace, build, tmp_path):
    t = trace([str(build("story")), "dup"])
    path = str(tmp_path / "dup.dat")
    assert t.of("dup", path=path)
    assert t.of("fcntl", path=path)[0]["newfd"] >= 10
    assert sum(r["bytes"] for r in t.of("write", path=path)) == 128
    assert t.of("fsync", path=path)


def test_forked_child_events_carry_its_pid(trace, build, tmp_path):
    t = trace([str(build("story")), "fork"])
    assert t.returncode == 0
    fork = t.of("fork")[0]
    child = fork["child"]
    assert fork["pid"] == t.report["target"]["pid"]
    assert t.of("openat", pid=child, path=str(tmp_path / "child.tmp"))[0]["flags"][1] == "O_CREAT"
    assert t.of("write", pid=child, path=str(tmp_path / "child.tmp"))
    assert t.of("rename", pid=child, path=str(tmp_path / "child.tmp"), path2=str(tmp_path / "child.dat"))
    assert t.of("exit", pid=child)[0]["code"] == 5
    # order: fork before the child's first event, the child's exit before the parent's
    index = {id(e): i for i, e in enumerate(t.events)}
    assert index[id(fork)] < index[id(t.of("openat", pid=child, path=str(tmp_path / "child.tmp"))[0])]


def test_thread_writes_carry_the_thread_id(trace, build, tmp_path):
    t = trace([str(build("story", "-pthread")), "thread"])
    path = str(tmp_path / "thread.dat")
    runs = t.of("write", path=path)
    pid = t.report["target"]["pid"]
    thread_runs = [r for r in runs if r["tid"] != pid]
    assert sum(r["calls"] for r in thread_runs) == 10 and all(r["pid"] == pid for r in thread_runs)
    assert sum(r["calls"] for r in runs if r["tid"] == pid) == 1


def test_exit_code_and_death_by_signal(trace, build, tmp_path):
    t = trace([str(build("story")), "signal"])
    assert t.returncode == 128 + 9
    assert t.of("exit")[-1]["signal"] == 9
    assert t.report["target"]["exit"] == {"code": None, "signal": 9}
    t = trace(["sh", "-c", "exit 3"])
    assert t.returncode == 3
    assert t.report["target"]["exit"] == {"code": 3, "signal": None}


def test_process_that_exits_at_once(trace):
    t = trace(["true"])
    assert t.returncode == 0
    assert t.of("exec")[0]["path"].endswith("true")
    assert t.of("exit")[0]["code"] == 0


def test_missing_command_is_one_line(bpf, tmp_path):
    result = fsaudit("run", "--", str(tmp_path / "no-such-program"))
    assert result.returncode == 127
    assert result.stderr.count("\n") == 1 and "cannot start" in result.stderr


def test_non_utf8_filename_survives_the_log(trace, build, tmp_path):
    t = trace([str(build("story")), "badname"])
    opened = [e for e in t.of("openat") if "bad-" in e.get("path", "")]
    assert os.fsencode(opened[0]["path"]) == os.fsencode(str(tmp_path)) + b"/bad-\xff\xfe.dat"
    # the text summary names the bytes, escaped, so the terminal gets valid UTF-8 (docs/guarantees.md)
    assert "bad-\\xff\\xfe.dat" in t.stderr and "\udcff" not in t.stderr
    replay = fsaudit("report", str(t.events_path), "--format", "json")
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["findings"] == t.report["findings"]


def spun(path: Path, records: int) -> Callable[[subprocess.Popen], None]:
    """Wait until story spin, already traced, has written `records` more records to
    path: each holds its number, read from the file, so the spinner makes no other
    syscall that would deliver its run before the detach."""

    def wanted(target: subprocess.Popen) -> None:
        first, deadline = int(path.read_bytes() or b"0"), time.monotonic() + WAIT
        while int(path.read_bytes() or b"0") < first + records:
            assert target.poll() is None and time.monotonic() < deadline

    return wanted


def test_attach_follows_a_running_process(bpf, build, tmp_path):
    t = attach_while_running([str(build("story")), "slow"], tmp_path)     # 20 rounds once attached
    path = str(tmp_path / "slow.dat")
    assert t.of("inherit", path=path), "the fd opened before attach is announced"
    assert sum(r["calls"] for r in t.of("write", path=path)) > 10
    assert len(t.of("fsync", path=path, ret=0)) > 10


def test_detach_delivers_write_runs_still_pending_in_the_kernel(bpf, build, tmp_path):
    t = attach_while_running([str(build("story")), "spin"], tmp_path, wanted=spun(tmp_path / "spin.dat", 1000))
    runs = t.of("write", path=str(tmp_path / "spin.dat"))
    assert runs and sum(r["calls"] for r in runs) >= 1000
    assert all(r["bytes"] == 64 * r["calls"] for r in runs)


def test_attach_to_unknown_pid_is_a_usage_error():
    result = fsaudit("attach", "999999999")
    assert result.returncode == 2
    assert result.stderr.strip() == "fsaudit: no process with pid 999999999"


def _has_child(ppid: int, comm: str) -> bool:
    for entry in os.scandir("/proc"):
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry.name}/comm") as f:
                if int(fields[1]) == ppid and f.read().strip() == comm:
                    return True
        except (OSError, ValueError, IndexError):
            continue
    return False


def test_sigint_to_fsaudit_reaches_the_command(bpf, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "fsaudit", "run", "--fail-on", "never",
                             "--json", str(tmp_path / "r.json"), "--", "sleep", "30"],
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _has_child(proc.pid, "sleep"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 128 + signal.SIGINT
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["target"]["exit"] == {"code": None, "signal": signal.SIGINT}


def test_user_option_runs_the_command_as_that_user(trace, tmp_path):
    os.chmod(tmp_path, 0o777)
    t = trace(["sh", "-c", "id -u"], "--user", "nobody")
    assert t.stdout.splitlines()[0] == "65534"
    assert t.of("exec")


def test_unknown_user_is_a_usage_error(bpf):
    result = fsaudit("run", "--user", "no-such-user-xyz", "--", "true")
    assert result.returncode == 2 and "no such user" in result.stderr


def test_doctor_reports_every_check(bpf):
    result = fsaudit("doctor")
    assert result.returncode == 0
    names = [line.split("]")[1].split(":")[0].strip() for line in result.stdout.splitlines()]
    assert names == ["kernel", "capabilities", "bcc", "kernel headers", "tracefs", "tracepoints",
                     "seccomp user notification", "binutils", "probe cache"]
