"""File roles and the default scope (rules.md, "role", "scope") on real traced programs:
each role decided from what the program does and where its files are, what each
default leaves out, and the same roles again when the event log is replayed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FSAUDIT, Traced, fsaudit
from fsaudit.analysis.engine import Engine
from test_attach import read_until, start_attach


def run_redirected(tmp_path: Path, argv: list[str], *options: str) -> Traced:
    """`fsaudit run ... -- argv > build.log`, as a shell or a CI runner starts it."""
    events, report = tmp_path / "events.jsonl", tmp_path / "report.json"
    with open(tmp_path / "build.log", "w") as build_log:
        proc = subprocess.run(FSAUDIT + ["run", "--fail-on", "never", "--events", str(events), "--json", str(report),
                                         *options, "--", *argv],
                              cwd=tmp_path, stdout=build_log, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr
    return Traced(proc, events, report)


def replayed(t: Traced, *options: str) -> dict:
    out = t.events_path.with_name("replayed.json")
    proc = fsaudit("report", str(t.events_path), "--fail-on", "never", "--json", str(out), *options)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def roles_of(report: dict) -> tuple:
    """What roles decide in a report: each finding's rule, file, severity and role, each file's role, the scope."""
    return (sorted((f["rule"], f["path"], f["severity"], f["role"]) for f in report["findings"]),
            sorted((f["path"], f["role"]) for f in report["files"]), report["scope"])


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def about(report: dict, name: str) -> list[dict]:
    return [f for f in report["findings"] if name in (os.path.basename(f["path"] or ""),
                                                      os.path.basename(f["target_path"] or ""))]


def test_the_callers_redirect_is_out_of_scope_and_include_stdio_brings_it_back(bpf, tmp_path):
    build = ["sh", "-c", "echo building; echo done"]
    t = run_redirected(tmp_path, build)
    assert (tmp_path / "build.log").read_text() == "building\ndone\n"
    assert t.of("inherit", fd=1, path=str(tmp_path / "build.log"), kind="file")
    assert t.report["findings"] == [] and t.report["files"] == []
    assert t.report["scope"] == {"excluded": {"cache": 0, "stdio": 1, "volatile": 0}, "included": []}
    assert roles_of(replayed(t)) == roles_of(t.report)

    t = run_redirected(tmp_path, build, "--include", "stdio")
    [finding] = t.report["findings"]
    assert (finding["rule"], finding["path"], finding["role"]) == ("FS105", str(tmp_path / "build.log"), "stdio")
    assert t.report["scope"] == {"excluded": {"cache": 0, "volatile": 0}, "included": ["stdio"]}
    assert roles_of(replayed(t, "--include", "stdio")) == roles_of(t.report)


@pytest.fixture
def tmpfs(tmp_path):
    """A tmpfs mounted in tmp_path for the test (which may unmount it)."""
    ram = tmp_path / "ram"
    ram.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "fsaudit-test", str(ram)], check=True)
    try:
        yield ram
    finally:
        if os.path.ismount(ram):
            subprocess.run(["umount", str(ram)], check=True)


def test_a_file_on_tmpfs_is_volatile_and_out_of_scope_and_replays_so_unmounted(trace, tmp_path, tmpfs):
    t = trace(python("open('ram/state', 'w').write('x' * 100); open('kept', 'w').write('y' * 100)"))
    assert [str(tmpfs), "tmpfs"] in t.header["mounts"]
    assert [(f["rule"], f["path"]) for f in t.report["findings"]] == [("FS105", str(tmp_path / "kept"))]
    assert t.report["scope"]["excluded"]["volatile"] == 1
    subprocess.run(["umount", str(tmpfs)], check=True)
    # The log's own mount table decides, not the host's at replay time.
    assert roles_of(replayed(t)) == roles_of(t.report)
    included = replayed(t, "--include", "volatile")
    assert ("FS105", str(tmpfs / "state"), "info", "volatile") in roles_of(included)[0]


def test_a_log_beside_a_synced_data_file_gets_no_intent_and_nothing_above_info(trace, tmp_path):
    t = trace(python(
        "import os, socket\n"
        "fd = os.open('data.db', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)\n"
        "os.write(fd, b'x' * 4096); os.fsync(fd); os.close(fd)\n"
        "with open('app.log', 'w') as log: log.write('started\\n')\n"
        "a, b = socket.socketpair(); a.send(b'ok')\n"            # a reply while app.log is dirty
        "os.rename('app.log', 'app.log.1')\n"))                  # rotated unsynced, directory never synced
    log_findings = about(t.report, "app.log.1")
    assert {f["rule"] for f in log_findings} == {"FS101", "FS102"}
    assert all((f["severity"], f["role"]) == ("info", "log") for f in log_findings), log_findings
    assert "FS106" not in t.rules()
    [data] = about(t.report, "data.db")
    assert (data["rule"], data["severity"], data["role"]) == ("FS103", "warning", "data")
    assert roles_of(replayed(t)) == roles_of(t.report)


def test_a_lock_file_opened_with_o_trunc_and_never_written(trace, tmp_path):
    (tmp_path / "instance.lck").write_text("4242\n")        # left by an earlier run
    t = trace(["sh", "-c", ": > instance.lck"])
    assert t.of("openat", path=str(tmp_path / "instance.lck"), existed=True)
    assert t.report["findings"] == []
    engine = Engine(header=t.header)
    for event in t.events:
        engine.feed(event)
    engine.finish()
    assert engine.files[str(tmp_path / "instance.lck")].role == "lock"


def test_unix_socket_and_fifo_names_are_no_files(trace, tmp_path):
    os.mkfifo(tmp_path / "jobs")                  # made before: the open's statx says what it is
    t = trace(python(
        "import os, socket\n"
        "fd = os.open('data.db', os.O_WRONLY | os.O_CREAT, 0o644); os.write(fd, b'x'); os.fsync(fd)\n"
        "s = socket.socket(socket.AF_UNIX); s.bind('.s.PGSQL.5432'); s.listen(); s.close()\n"
        "os.unlink('.s.PGSQL.5432')\n"
        "os.mkfifo('fifo')\n"                     # made and removed in the trace: mknod says what it is
        "f = os.open('fifo', os.O_RDWR | os.O_CREAT | os.O_TRUNC); os.write(f, b'job\\n'); os.close(f)\n"
        "os.unlink('fifo')\n"
        "f = os.open('jobs', os.O_RDWR | os.O_CREAT | os.O_TRUNC); os.write(f, b'job\\n'); os.close(f)\n"))
    assert t.of("bind", path=str(tmp_path / ".s.PGSQL.5432"))
    assert t.of("mknodat", path=str(tmp_path / "fifo"), type="fifo")
    assert t.of("openat", path=str(tmp_path / "jobs"), kind="other")
    for name in (".s.PGSQL.5432", "fifo", "jobs"):
        assert about(t.report, name) == []
    assert t.rules() == ["FS103"]          # the data file's directory entry, still true


def test_attach_knows_the_name_of_a_socket_bound_before_it(bpf, tmp_path):
    target = subprocess.Popen(python(
        "import os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.bind('server.sock'); s.listen()\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
        "fd = os.open('data.db', os.O_WRONLY | os.O_CREAT, 0o644); os.write(fd, b'x'); os.fsync(fd)\n"
        "s.close(); os.unlink('server.sock')\n"), cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout.readline() == "ready\n"
        attach = start_attach(target.pid, tmp_path, "--fail-on", "never")
        read_until(attach, "attached to pid")
        target.stdin.write("go\n")
        target.stdin.close()
        assert target.wait() == 0
        attach.communicate()
        assert attach.returncode == 0
    finally:
        target.kill()
        target.wait()
    t = Traced(attach, tmp_path / "attach.jsonl", tmp_path / "r.json")
    assert [e for e in t.of("inherit") if e.get("bound") == str(tmp_path / "server.sock")]
    assert t.of("unlink", path=str(tmp_path / "server.sock"))
    assert about(t.report, "server.sock") == []


def test_include_names_only_the_roles_left_out_by_default(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text('{"schema": "fsaudit.events/1", "mode": "run", "argv": ["true"]}\n'
                   '{"trailer": "fsaudit.events/1", "events": 0}\n')
    proc = fsaudit("report", str(log), "--include", "stdio,logs")
    assert proc.returncode == 2 and proc.stderr == "fsaudit: --include 'logs': not one of cache, stdio, volatile\n"
    proc = fsaudit("report", str(log), "--include", "stdio", "--include", "cache,volatile", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["scope"] == {"excluded": {}, "included": ["cache", "stdio", "volatile"]}
