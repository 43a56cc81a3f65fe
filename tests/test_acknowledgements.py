"""FS106 and FS101's window on real programs under the real tracer: who acknowledges
what, which sockets are the outside world, and barriers that are commit points
(tests/programs/acks.py, and PostgreSQL when installed); a batch that syncs
everything at its end (sh, mv, sync)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import FSAUDIT, PROGRAMS, Traced, attach_while_running

ACKS = str(PROGRAMS / "acks.py")


def findings(t, rule: str) -> list[dict]:
    return [f for f in t.report["findings"] if f["rule"] == rule]


def server_and_client(t) -> tuple[int, int]:
    """The pids of acks.py's server (the command) and of the client it forked."""
    server = t.report["target"]["pid"]
    (client,) = [e["child"] for e in t.of("fork", pid=server)]
    return server, client


@pytest.mark.parametrize("family", ["inet", "unix"])
def test_fs106_a_write_ahead_log_server_and_its_client_acknowledge_nothing(trace, family):
    """Per request the server writes a table page and a log record, fdatasyncs the log,
    replies, then writes its access log: its reply follows a barrier of its own. The
    client's requests go out while the server's files are dirty: not the client's data."""
    t = trace([sys.executable, ACKS, "wal", family])
    assert t.returncode == 0, t.stderr
    server, client = server_and_client(t)
    # The client has nothing unsynced: its requests may be one run past the server's events.
    assert sum(e.get("calls", 1) for e in t.of("sendto", pid=client)) == 3
    assert len(t.of("sendto", pid=server)) == 3
    assert findings(t, "FS106") == []
    assert {e.get("family") for e in t.of("sendto")} == {"AF_INET" if family == "inet" else "AF_UNIX"}


@pytest.mark.parametrize("family", ["inet", "unix"])
def test_fs106_a_server_replying_before_its_fsync_is_blamed_never_its_client(trace, family):
    t = trace([sys.executable, ACKS, "everysec", family])
    assert t.returncode == 0, t.stderr
    server, _ = server_and_client(t)
    found = findings(t, "FS106")
    assert {f["path"].rsplit("/", 1)[1] for f in found} >= {"table", "wal"}
    assert {f["pid"] for f in found} == {server}
    assert all(f["evidence"][-1]["pid"] == server for f in found)


def test_fs106_a_netlink_send_is_not_the_outside_world(trace):
    """Data written, a netlink route request sent (as runuser sends its PAM audit
    record), then the fsync."""
    t = trace([sys.executable, ACKS, "netlink"])
    assert t.returncode == 0, t.stderr
    assert findings(t, "FS106") == []
    (socket,) = t.of("socket")
    assert socket.get("family") == "AF_NETLINK" and t.of("sendto", family="AF_NETLINK")


def test_fs106_group_commit_one_backends_fdatasync_covers_the_records_of_others(trace):
    """A writes its record, B writes its own and fdatasyncs, C writes one it leaves
    unsynced, then A replies: A's record is durable, and C's unsynced one is C's."""
    t = trace([sys.executable, ACKS, "groupcommit"])
    assert t.returncode == 0, t.stderr
    a = t.report["target"]["pid"]
    assert findings(t, "FS106") == []
    assert t.of("sendto", pid=a) or t.of("write", pid=a, kind="socket")
    (unsynced,) = findings(t, "FS105")
    assert unsynced["pid"] != a and unsynced["path"].endswith("/wal")


def test_fs106_attach_tells_inherited_sockets_apart(tmp_path):
    """Sockets made before the attach: their family comes from the tables of the
    process's network namespace. The sends on the netlink one acknowledge nothing;
    those on the unix one acknowledge b.dat's unsynced page."""
    t = attach_while_running([sys.executable, ACKS, "attached"], tmp_path)
    assert {f["path"] for f in findings(t, "FS106")} == {str(tmp_path / "b.dat")}
    families = {e.get("family") for e in t.of("inherit") if e["kind"] == "socket"}
    assert families == {"AF_NETLINK", "AF_UNIX"}, t.of("inherit")


@pytest.mark.parametrize("closing", ["sync", "sync -f .", "sync d/f d"])
def test_fs101_a_batch_that_syncs_everything_at_its_end_is_info(trace, tmp_path, closing):
    """sh writes d/f.tmp, mv publishes it unsynced, then sync (sync(), syncfs(), or
    fsync of the file and of its directory) makes both durable before the end."""
    (tmp_path / "d").mkdir()
    t = trace(["sh", "-c", f"printf data > d/f.tmp && mv d/f.tmp d/f && {closing}"])
    assert t.returncode == 0, t.stderr
    (finding,) = findings(t, "FS101")
    assert finding["severity"] == "info", finding
    assert " s later" in finding["message"] and finding["message"].startswith("mv (pid ")
    assert finding["target_path"] == str(tmp_path / "d" / "f")


def test_fs101_a_batch_that_syncs_only_its_file_keeps_the_error(trace, tmp_path):
    (tmp_path / "d").mkdir()
    t = trace(["sh", "-c", "printf data > d/f.tmp && mv d/f.tmp d/f && sync d/f"])
    assert t.returncode == 0, t.stderr
    (finding,) = findings(t, "FS101")
    assert finding["severity"] == "error"


POSTGRES = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture
def postgres_server():
    """A PostgreSQL 15 cluster of its own, started untraced as the postgres user,
    listening only on a unix socket in its directory: (postmaster pid, psql argv)."""
    if not (POSTGRES / "initdb").exists():
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="fsaudit-pg-"))   # not under pytest's 0700 tmp: postgres must enter
    shutil.chown(base, "postgres")
    data, port = base / "data", str(54000 + os.getpid() % 1000)

    def as_postgres(*argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True)

    try:
        as_postgres(str(POSTGRES / "initdb"), "-D", str(data), "--no-sync", "-A", "trust", "-U", "postgres")
        as_postgres(str(POSTGRES / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "start",
                    "-o", f"-k {base} -p {port} -c listen_addresses=''")
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        yield postmaster, ["psql", "-X", "-q", "-h", str(base), "-p", port, "-U", "postgres"], data
    finally:
        if (data / "postmaster.pid").exists():
            as_postgres(str(POSTGRES / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_fs106_postgresql_commits_are_no_unsynced_acknowledgements(bpf, postgres_server, tmp_path):
    """Attached to PostgreSQL while a client runs autocommit INSERTs and a CHECKPOINT:
    each backend extends the table, writes and fdatasyncs its WAL record, then
    replies. The commits are durable when acknowledged: no FS106, on pg_wal or on
    the table, and every process is named with its exe and argv."""
    postmaster, psql, data = postgres_server
    events, report = tmp_path / "pg.jsonl", tmp_path / "pg.json"
    tracer = subprocess.Popen(FSAUDIT + ["attach", str(postmaster), "--fail-on", "never", "--no-live",
                                         "--events", str(events), "--json", str(report)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert tracer.stderr.readline().startswith(f"fsaudit: attached to pid {postmaster}")
        statements = ["CREATE TABLE t (x int, y text)"] + [
            f"INSERT INTO t VALUES ({n}, repeat('x', 500))" for n in range(20)] + ["CHECKPOINT"]
        for statement in statements:
            subprocess.run(psql + ["-c", statement], check=True, capture_output=True)
    finally:
        tracer.send_signal(signal.SIGINT)
        _, stderr = tracer.communicate(timeout=120)
    assert tracer.returncode == 0, stderr
    t = Traced(subprocess.CompletedProcess([], 0, "", stderr), events, report)
    # pg_internal.init is the relation cache a backend writes at its first connection and
    # PostgreSQL removes after a crash: a cache (rules.md, roles), not the data acknowledged.
    assert [f for f in findings(t, "FS106") if not f["path"].endswith("/pg_internal.init")] == []
    replies = [e for e in t.events if e["syscall"] in ("sendto", "write") and e.get("family") == "AF_UNIX"]
    assert len(replies) >= len(statements)
    assert [e for e in t.events if e["syscall"] == "fdatasync" and "/pg_wal/" in e.get("path", "")]
    for process in t.report["processes"]:
        assert process["exe"] and process["argv"], process
    assert not any(f["message"].startswith("process (pid") for f in t.report["findings"])
