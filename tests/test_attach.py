"""fsaudit attach: the whole running tree, pinned, and every output on every way it ends."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from conftest import FSAUDIT, ROOT, WAIT, Traced, fsaudit, read_until
from fsaudit.tracing.attach_tree import pin
from fsaudit.tracing.tracer import Tracer

# A shell whose child, already running when fsaudit attaches, appends a line every 0.2 s.
APPENDER = "(echo ready; while :; do echo tick >> appended.log; sleep 0.2; done) & wait"
PF_KTHREAD = 0x00200000


def start_tree(argv: list[str], cwd: Path, **kw) -> subprocess.Popen:
    """argv in a process group of its own (killed whole by kill_tree), once it printed "ready"."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, text=True, start_new_session=True, **kw)
    assert proc.stdout.readline() == "ready\n"
    return proc


def kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def children(pid: int) -> set[int]:
    found = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            found.update(int(c) for c in f.read().split())
    return found


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 (state) on."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].decode().split()


def start_attach(pid: int, tmp_path: Path, *options: str, preexec: list[str] = ()) -> subprocess.Popen:
    return subprocess.Popen([*preexec, *FSAUDIT, "attach", str(pid), "--events", str(tmp_path / "attach.jsonl"),
                             "--json", str(tmp_path / "r.json"), *options],
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def holds_pidfd_of(holder: int, pid: int) -> bool:
    for name in os.listdir(f"/proc/{holder}/fdinfo"):
        try:
            with open(f"/proc/{holder}/fdinfo/{name}") as info:
                if f"Pid:\t{pid}\n" in info.read():
                    return True
        except OSError:
            continue
    return False


def has_bpf_program(holder: int) -> bool:
    for name in os.listdir(f"/proc/{holder}/fd"):
        try:
            if os.readlink(f"/proc/{holder}/fd/{name}") == "anon_inode:bpf-prog":
                return True
        except OSError:
            continue
    return False


def stopped_while_loading(target: int, tmp_path: Path, attempts: int = 3) -> subprocess.Popen:
    """`fsaudit attach target`, stopped (SIGSTOP) once it has pinned target and
    before its probe is loaded, so that whatever happens to target now happens
    during the load. A load quicker than the stop is tried again."""
    for _ in range(attempts):
        proc = start_attach(target, tmp_path)
        deadline = time.monotonic() + WAIT
        while not holds_pidfd_of(proc.pid, target):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "fsaudit never pinned the target with a pidfd"
            time.sleep(0.005)
        proc.send_signal(signal.SIGSTOP)
        if not has_bpf_program(proc.pid):
            return proc
        proc.kill()
        proc.wait()
    pytest.fail(f"fsaudit loaded its probe before it could be stopped, {attempts} times")


def appended_once_more(log: Path) -> None:
    """Wait for APPENDER's next line (0.2 s apart): once fsaudit is attached, it is traced."""
    def size() -> int:
        return log.stat().st_size if log.exists() else 0

    before, deadline = size(), time.monotonic() + WAIT
    while size() == before:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_attach_takes_the_children_already_running(bpf, tmp_path):
    shell = start_tree(["sh", "-c", APPENDER], tmp_path)
    try:
        (appender,) = children(shell.pid)
        proc = start_attach(shell.pid, tmp_path, "--fail-on", "never")
        try:
            said = read_until(proc, "fsaudit: attached to")
            appended_once_more(tmp_path / "appended.log")
            proc.send_signal(signal.SIGTERM)
            _, rest = proc.communicate(timeout=WAIT)
        finally:
            proc.kill()
            proc.wait()
    finally:
        kill_tree(shell)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, "", said + rest.decode())
    assert result.returncode == 0, result.stderr
    t = Traced(result, tmp_path / "attach.jsonl", tmp_path / "r.json")
    files = {f["path"]: f for f in t.report["files"]}
    assert files[str(tmp_path / "appended.log")]["writes"] > 0
    processes = {p["pid"]: p for p in t.report["processes"]}
    assert processes[appender]["ppid"] == shell.pid
    assert processes[shell.pid]["argv"] == ["sh", "-c", APPENDER]
    adopted = t.report["target"]["adopted"]
    assert adopted >= 2     # the shell, the appender, and maybe a sleep of the appender's
    assert f"fsaudit: attached to pid {shell.pid} and {adopted - 1} existing descendant" in result.stderr
    assert {e["pid"] for e in t.of("adopt")} >= {shell.pid, appender}
    jsonschema.Draft202012Validator(json.loads((ROOT / "docs" / "report.schema.json").read_text())).validate(t.report)


class Traced32(dict):
    """The probe's `traced` map as a dict, keyed like bcc's by ctypes integers."""

    def __setitem__(self, key, value):
        super().__setitem__(key.value, value)

    def get(self, key, default=None):
        return super().get(key.value, default)

    def pop(self, key, default=None):
        return super().pop(key.value, default)


def test_an_adopted_process_that_exited_unseen_does_not_keep_the_tree_alive():
    """A process marked just after the probe's exit tracepoint ran for it leaves
    its entry behind: once its pidfd says it has exited, the entry goes."""
    short = subprocess.Popen(["sleep", "60"])
    pinned = pin(short.pid)
    short.kill()
    short.wait()
    tracer = Tracer.__new__(Tracer)
    tracer.traced = Traced32({short.pid: 1})
    tracer._pinned, tracer._exits = {pinned.pidfd: pinned}, select.poll()
    tracer._exits.register(pinned.pidfd, select.POLLIN)
    assert not tracer.tree_alive()
    assert tracer.traced == {} and tracer._pinned == {}


@pytest.mark.parametrize("signum, fail_on, status", [
    (signal.SIGTERM, "never", 0), (signal.SIGHUP, "never", 0), (signal.SIGINT, "never", 0),
    (signal.SIGTERM, "info", 1),     # the appender's unsynced lines are an FS105 (info)
])
def test_a_stop_signal_detaches_and_writes_every_output(bpf, tmp_path, signum, fail_on, status):
    shell = start_tree(["sh", "-c", APPENDER], tmp_path)
    try:
        proc = start_attach(shell.pid, tmp_path, "--fail-on", fail_on, "--no-live")
        try:
            read_until(proc, "fsaudit: attached to")
            appended_once_more(tmp_path / "appended.log")
            proc.send_signal(signum)
            proc.communicate(timeout=WAIT)
        finally:
            proc.kill()
            proc.wait()
    finally:
        kill_tree(shell)
    assert proc.returncode == status
    t = Traced(proc, tmp_path / "attach.jsonl", tmp_path / "r.json")
    assert t.report["mode"] == "attach" and t.report["target"]["pid"] == shell.pid
    assert t.of("adopt", pid=shell.pid)
    assert any(f["path"] == str(tmp_path / "appended.log") for f in t.report["files"])


def test_attach_to_a_zombie_is_refused_before_anything_loads(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", "import os, time\n"
                               "child = os.fork()\n"
                               "if child == 0:\n    os._exit(0)\n"
                               "print(child, flush=True)\ntime.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        zombie = int(parent.stdout.readline())
        while stat_fields(zombie)[0] != "Z":
            time.sleep(0.01)
        result = fsaudit("attach", str(zombie), "--json", str(tmp_path / "r.json"), timeout=WAIT)
    finally:
        parent.kill()
        parent.wait()
    assert result.returncode == 2
    assert result.stderr == (f"fsaudit: pid {zombie} is a zombie: it has exited and its parent "
                             f"has not reaped it\n")
    assert not (tmp_path / "r.json").exists()


def test_a_zombie_child_is_not_adopted_and_the_tree_ends_with_its_parent(bpf, tmp_path):
    """A pinned walk skips the zombie: marked traced, it would never exit again
    and its entry would keep the attach running after the tree is gone."""
    parent = start_tree([sys.executable, "-c", "import os, time\n"
                         "if os.fork() == 0:\n    os._exit(0)\n"
                         "print('ready', flush=True)\ntime.sleep(60)\n"], tmp_path)
    try:
        (zombie,) = children(parent.pid)
        while stat_fields(zombie)[0] != "Z":
            time.sleep(0.01)
        proc = start_attach(parent.pid, tmp_path, "--no-live")
        try:
            read_until(proc, f"fsaudit: attached to pid {parent.pid} and 0 existing descendants")
            kill_tree(parent)
            proc.communicate(timeout=WAIT)
        finally:
            proc.kill()
            proc.wait()
    finally:
        kill_tree(parent)
    assert proc.returncode == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [p["pid"] for p in report["processes"]] == [parent.pid]
    assert report["target"]["adopted"] == 1


def test_target_exiting_while_fsaudit_loads_ends_the_attach(bpf, tmp_path):
    target = subprocess.Popen(["sleep", "60"])
    try:
        proc = stopped_while_loading(target.pid, tmp_path)
        target.kill()
        target.wait()
        proc.send_signal(signal.SIGCONT)
        _, stderr = proc.communicate(timeout=WAIT)
    finally:
        target.kill()
        target.wait()
    assert proc.returncode == 2
    assert stderr.decode() == f"fsaudit: pid {target.pid} exited while fsaudit was loading; nothing was traced\n"


def fork_with_pid(pid: int, argv: list[str], cwd: Path) -> subprocess.Popen:
    """Start argv as process pid (free by now): the kernel gives the next
    process ns_last_pid + 1, unless another process on the host forks first."""
    for _ in range(20):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        proc = subprocess.Popen(argv, cwd=cwd)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    pytest.fail(f"could not start a process with pid {pid}")


def test_a_reused_pid_is_never_traced_as_the_target(bpf, tmp_path):
    target = subprocess.Popen(["sleep", "60"])
    impostor = None
    try:
        proc = stopped_while_loading(target.pid, tmp_path)
        target.kill()
        target.wait()
        impostor = fork_with_pid(target.pid, ["sh", "-c", "while :; do echo x >> impostor.log; sleep 0.05; done"],
                                 tmp_path)
        proc.send_signal(signal.SIGCONT)
        _, stderr = proc.communicate(timeout=WAIT)
    finally:
        for p in (target, impostor):
            if p:
                p.kill()
                p.wait()
    assert proc.returncode == 2
    assert stderr.decode() == (f"fsaudit: pid {target.pid} exited while fsaudit was loading; nothing was traced "
                               f"(pid {target.pid} now names another process, which is not traced)\n")
    for output in ("attach.jsonl", "r.json"):
        path = tmp_path / output
        assert not path.exists() or "impostor" not in path.read_text()


def kernel_thread() -> int | None:
    for name in sorted(os.listdir("/proc"), key=lambda n: (len(n), n)):
        if name.isdigit():
            try:
                if int(stat_fields(int(name))[6]) & PF_KTHREAD:
                    return int(name)
            except OSError:
                continue
    return None


def test_attach_to_a_kernel_thread_is_refused(bpf):
    kthread = kernel_thread()
    if kthread is None:
        pytest.skip("no kernel thread visible here (a PID namespace)")
    result = fsaudit("attach", str(kthread), "--duration", "5", timeout=WAIT)
    assert result.returncode == 2
    assert result.stderr == (f"fsaudit: pid {kthread} is a kernel thread: it makes no system calls "
                             f"fsaudit can trace\n")


def test_attach_to_a_thread_names_its_process(tmp_path):
    threaded = start_tree([sys.executable, "-c", "import threading, time\n"
                           "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
                           "print('ready', flush=True)\ntime.sleep(60)\n"], tmp_path)
    try:
        (tid,) = {int(t) for t in os.listdir(f"/proc/{threaded.pid}/task")} - {threaded.pid}
        result = fsaudit("attach", str(tid), timeout=WAIT)
    finally:
        kill_tree(threaded)
    assert result.returncode == 2
    assert result.stderr == f"fsaudit: pid {tid} is a thread of process {threaded.pid}: attach to {threaded.pid}\n"


def test_what_attach_cannot_read_of_a_process_is_a_warning(bpf, tmp_path):
    """fsaudit without CAP_SYS_PTRACE may not read the fds of another user's
    process: it must say so, not report a quiet "No findings"."""
    target = start_tree(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                         "sh", "-c", "echo ready; exec sleep infinity"], tmp_path)
    try:
        result = subprocess.run(["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace", *FSAUDIT,
                                 "attach", str(target.pid), "--duration", "1", "--fail-on", "never",
                                 "--json", str(tmp_path / "r.json"), "--no-live"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=WAIT)
    finally:
        kill_tree(target)
    assert result.returncode == 0, result.stderr
    warning = (f"pid {target.pid}: could not read its open file descriptors and working directory "
               f"(Permission denied): writes through files it had open before the attach are not attributed "
               f"to those files; its relative paths are resolved against /")
    assert f"fsaudit: warning: {warning}\n" in result.stderr
    assert json.loads((tmp_path / "r.json").read_text())["warnings"] == [warning]
