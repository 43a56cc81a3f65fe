"""The engine on hand-written event streams (docs/events.md): each rule fires on a bad
sequence and stays quiet on its correct twin."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from io import StringIO
import xml.etree.ElementTree as ET

import pytest

from fsaudit.analysis.config import EngineConfig
from fsaudit.analysis.engine import Engine
from fsaudit.analysis.model import MOOT_WHEN_SETTLED, RARELY, Call, FileState, SettledFile, kept
from fsaudit.outputs.json import write_json
from fsaudit.outputs.junit import render_junit
from fsaudit.outputs.report import build_report, exit_status
from fsaudit.outputs.sarif import render_sarif
from fsaudit.outputs.text import render_text
from fsaudit.analysis.rules import RULES, RULES_BY_CODE
from fsaudit.analysis.rules.namespace import Window

PID = 100
D = "/srv/app"


class Stream:
    """Builds events of one process with increasing timestamps and fresh fds."""

    def __init__(self, pid: int = PID, argv: tuple = ("app",)) -> None:
        self.pid = pid
        self.t = 0.0
        self.next_fd = 3
        self.events: list[dict] = [self.ev("exec", path="/usr/bin/" + argv[0], argv=list(argv))]

    def ev(self, syscall: str, ret=0, pid: int | None = None, **fields) -> dict:
        self.t += 0.001
        pid = pid or self.pid
        event = {"t": round(self.t, 6), "pid": pid, "tid": pid, "syscall": syscall, "ret": ret, **fields}
        if hasattr(self, "events"):
            self.events.append(event)
        return event

    def open(self, path: str, *flags: str, kind: str = "file", **extra) -> int:
        fd = self.next_fd
        self.next_fd += 1
        self.ev("openat", ret=fd, fd=fd, path=path, flags=list(flags) or ["O_WRONLY", "O_CREAT", "O_TRUNC"],
                mode=0o644, kind=kind, **extra)
        return fd

    def write(self, fd: int, path: str, nbytes: int = 4096, calls: int = 1, kind: str = "file", **extra) -> None:
        if calls > 1:
            self.ev("write", ret=nbytes * calls, fd=fd, path=path, kind=kind, calls=calls,
                    bytes=nbytes * calls, size_max=nbytes, t_first=self.t, **extra)
        else:
            self.ev("write", ret=nbytes, fd=fd, path=path, kind=kind, calls=1, bytes=nbytes,
                    size_max=nbytes, t_first=self.t, **extra)

    def fsync(self, fd: int, path: str, kind: str = "file", ret=0, syscall: str = "fsync") -> None:
        self.ev(syscall, ret=ret, fd=fd, path=path, kind=kind, latency_us=500)

    def close(self, fd: int, path: str, ret=0) -> None:
        self.ev("close", ret=ret, fd=fd, path=path, kind="file")

    def sync_dir(self, directory: str = D) -> None:
        fd = self.open(directory, "O_RDONLY", kind="dir")
        self.fsync(fd, directory, kind="dir")
        self.ev("close", fd=fd, path=directory, kind="dir")

    def rename(self, old: str, new: str) -> None:
        self.ev("rename", path=old, path2=new)

    def exit(self, code: int | None = 0, signal: int | None = None) -> None:
        self.ev("exit", code=code, signal=signal)

    def save(self, path: str, fsync: bool = True, dir_sync: bool = True, tmp: str | None = None) -> None:
        """Write tmp, (fsync), rename over path, (fsync the directory): the atomic replace."""
        tmp = tmp or path + ".tmp"
        fd = self.open(tmp)
        self.write(fd, tmp, 8192, calls=4)
        if fsync:
            self.fsync(fd, tmp)
        self.close(fd, tmp)
        self.rename(tmp, path)
        if dir_sync:
            self.sync_dir(path.rsplit("/", 1)[0])


def analyse(events: list[dict], exit_status=None, config: EngineConfig | None = None,
            header: dict | None = None) -> Engine:
    engine = Engine(config, header=header)
    for event in events:
        engine.feed(event)
    engine.finish(exit_status)
    return engine


def codes(engine: Engine) -> list[str]:
    return sorted(f.rule for f in engine.findings)


def only(engine: Engine, code: str):
    found = [f for f in engine.findings if f.rule == code]
    assert len(found) == 1, engine.findings
    return found[0]


# FS101 rename-unsynced-data


def test_fs101_rename_without_fsync():
    s = Stream()
    s.save(D + "/db", fsync=False)
    s.exit()
    engine = analyse(s.events)
    finding = only(engine, "FS101")
    assert codes(engine) == ["FS101"]
    assert finding.path == D + "/db.tmp" and finding.target_path == D + "/db"
    assert finding.severity == "error"
    assert "app (pid 100)" in finding.message and "32768 bytes" in finding.message
    assert [e["syscall"] for e in finding.evidence] == ["write", "rename"]
    assert finding.evidence[0]["calls"] == 4 and finding.evidence[0]["bytes"] == 32768


def test_fs101_good_twin_fsync_before_rename():
    s = Stream()
    s.save(D + "/db")
    s.exit()
    assert codes(analyse(s.events)) == []


def test_fs101_write_through_dup_is_the_same_file():
    s = Stream()
    tmp = D + "/db.tmp"
    fd = s.open(tmp)
    s.ev("dup", ret=7, fd=fd, newfd=7, path=tmp)
    s.write(7, tmp)
    s.fsync(fd, tmp)            # fsync on the original fd covers the write via the dup
    s.write(7, tmp, 10)          # ...but not this one
    s.rename(tmp, D + "/db")
    s.sync_dir()
    engine = analyse(s.events)
    assert codes(engine) == ["FS101"]
    assert "10 bytes" in only(engine, "FS101").message


def test_fs101_written_by_another_process_of_the_tree():
    s = Stream()
    tmp = D + "/db.tmp"
    s.ev("fork", ret=101, child=101)
    fd = s.open(tmp)
    s.ev("write", pid=101, ret=100, fd=fd, path=tmp, kind="file", calls=1, bytes=100, size_max=100, t_first=s.t)
    s.rename(tmp, D + "/db")
    s.sync_dir()
    assert codes(analyse(s.events)) == ["FS101"]


def test_fs101_batch_that_makes_everything_durable_at_its_end_is_info():
    """A bootstrap run with fsync off, then a sync of the whole tree before the end:
    the window was real but closed before anything was acknowledged."""
    for closing in ("sync", "syncfs", "fsyncs"):
        s = Stream()
        s.save(D + "/db", fsync=False, dir_sync=False)
        if closing == "fsyncs":
            fd = s.open(D + "/db", "O_RDONLY")
            s.fsync(fd, D + "/db")
            s.sync_dir()
        else:
            s.ev(closing, fd=3, path=D, kind="dir")
        s.exit()
        engine = analyse(s.events)
        finding = only(engine, "FS101")
        assert finding.severity == "info", closing
        assert "made durable 0.00" in finding.message and " s later" in finding.message, finding.message
        assert "FS102" not in codes(engine)


def test_fs101_window_carried_to_a_settled_replacement():
    """A published file replaced under its name before it was durable, by a file written,
    synced and closed before (settled: a rename leaves it so): the window stays open on the
    replacement, and closes in time with the directory's sync."""
    s = Stream()
    s.save(D + "/state", fsync=False, dir_sync=False)
    fd = s.open(D + "/state.next")
    s.write(fd, D + "/state.next")
    s.fsync(fd, D + "/state.next")
    s.close(fd, D + "/state.next")
    s.rename(D + "/state.next", D + "/state")
    s.sync_dir()
    s.exit()
    engine = analyse(s.events)
    assert only(engine, "FS101").severity == "info"
    assert not engine.publications and RULES_BY_CODE["FS101"].recall(engine.files[D + "/state"]) is None


def test_fs101_window_still_open_at_a_send_or_the_end_is_the_error():
    s = Stream()                                  # a reply went out before the sync
    s.save(D + "/db", fsync=False, dir_sync=False)
    s.ev("sendto", ret=2, fd=9, kind="socket", family="AF_INET")
    s.ev("sync")
    assert only(analyse(s.events), "FS101").severity == "error"
    s = Stream()                                  # the netlink audit record is no acknowledgement
    s.save(D + "/db", fsync=False, dir_sync=False)
    s.ev("sendto", ret=2, fd=9, kind="socket", family="AF_NETLINK")
    s.ev("sync")
    assert only(analyse(s.events), "FS101").severity == "info"
    s = Stream()                                  # the file made durable, its directory never
    s.save(D + "/db", fsync=False, dir_sync=False)
    fd = s.open(D + "/db", "O_RDONLY")
    s.fsync(fd, D + "/db")
    assert only(analyse(s.events), "FS101").severity == "error"
    s = Stream()                                  # removed before the sync
    s.save(D + "/db", fsync=False, dir_sync=False)
    s.ev("unlink", path=D + "/db")
    s.ev("sync")
    assert only(analyse(s.events), "FS101").severity == "error"


def test_o_sync_write_is_durable():
    s = Stream()
    tmp = D + "/db.tmp"
    fd = s.open(tmp, "O_WRONLY", "O_CREAT", "O_SYNC")
    s.write(fd, tmp, o_sync=True)
    s.ev("pwritev2", ret=512, fd=fd, path=tmp, kind="file", iovcnt=1, rwf=["RWF_DSYNC"])
    s.rename(tmp, D + "/db")
    s.sync_dir()
    s.exit()
    engine = analyse(s.events)
    assert codes(engine) == []
    assert engine.processes[PID].io.o_sync_writes == 2


def test_close_is_not_a_barrier():
    s = Stream()
    fd = s.open(D + "/db.tmp")
    s.write(fd, D + "/db.tmp")
    s.close(fd, D + "/db.tmp")
    s.ev("sync_file_range", fd=fd, path=D + "/db.tmp", kind="file", flags=["SYNC_FILE_RANGE_WRITE"])
    s.rename(D + "/db.tmp", D + "/db")
    s.sync_dir()
    assert codes(analyse(s.events)) == ["FS101", "FS301"]


# FS102 rename-unsynced-dir


def test_fs102_rename_without_dir_sync():
    s = Stream()
    s.save(D + "/db", dir_sync=False)
    engine = analyse(s.events)
    finding = only(engine, "FS102")
    assert codes(engine) == ["FS102"]
    assert finding.path == D and finding.target_path == D + "/db"


def test_fs102_dir_synced_before_rename_does_not_count():
    s = Stream()
    fd = s.open(D + "/db.tmp")
    s.write(fd, D + "/db.tmp")
    s.fsync(fd, D + "/db.tmp")
    s.sync_dir()
    s.rename(D + "/db.tmp", D + "/db")
    assert codes(analyse(s.events)) == ["FS102"]


def test_fs102_cross_directory_rename_syncing_only_one_side():
    s = Stream()
    src, dst = "/srv/spool/job", "/srv/done/job"
    fd = s.open(src)
    s.write(fd, src)
    s.fsync(fd, src)
    s.rename(src, dst)
    s.sync_dir("/srv/done")
    engine = analyse(s.events)
    finding = only(engine, "FS102")
    assert codes(engine) == ["FS102"]
    assert finding.path == "/srv/spool"


def test_fs102_good_twin_cross_directory_both_sides_synced():
    s = Stream()
    src, dst = "/srv/spool/job", "/srv/done/job"
    fd = s.open(src)
    s.write(fd, src)
    s.fsync(fd, src)
    s.rename(src, dst)
    s.sync_dir("/srv/done")
    s.sync_dir("/srv/spool")
    assert codes(analyse(s.events)) == []


def test_fs102_link_needs_a_dir_sync():
    s = Stream()
    s.ev("link", path=D + "/a", path2=D + "/b")
    assert codes(analyse(s.events)) == ["FS102"]
    s.sync_dir()
    assert codes(analyse(s.events)) == []


def test_200_correct_atomic_replaces_give_no_finding():
    s = Stream()
    for _ in range(200):
        s.save(D + "/state.json")
    s.exit()
    engine = analyse(s.events)
    assert engine.findings == []
    assert engine.processes[PID].io.fsync == 200 and engine.processes[PID].io.dir_syncs == 200


def test_dedup_counts_repeats():
    s = Stream()
    for _ in range(200):
        s.save(D + "/state.json", fsync=False)
    s.exit()
    engine = analyse(s.events)
    assert codes(engine) == ["FS101"]
    assert only(engine, "FS101").count == 200


def test_dedup_fs102_counts_every_unsynced_rename():
    s = Stream()
    for _ in range(5):
        s.save(D + "/state.json", dir_sync=False)
    finding = only(analyse(s.events), "FS102")
    assert finding.count == 5
    assert len(finding.evidence) == 2


# FS103 create-unsynced-dir (intent-gated)


def test_fs103_new_file_fsynced_but_not_its_directory():
    s = Stream()
    fd = s.open(D + "/wal", "O_WRONLY", "O_CREAT", "O_EXCL")
    s.write(fd, D + "/wal")
    s.fsync(fd, D + "/wal")
    s.exit()
    engine = analyse(s.events)
    assert codes(engine) == ["FS103"]
    assert only(engine, "FS103").path == D + "/wal"


def test_fs103_good_twin_directory_synced_after_create():
    s = Stream()
    fd = s.open(D + "/wal", "O_WRONLY", "O_CREAT", "O_EXCL")
    s.write(fd, D + "/wal")
    s.fsync(fd, D + "/wal")
    s.sync_dir()
    assert codes(analyse(s.events)) == []


def test_fs103_no_intent_no_finding():
    s = Stream()
    fd = s.open("/tmp/build/out.o", "O_WRONLY", "O_CREAT", "O_EXCL")
    s.write(fd, "/tmp/build/out.o")
    s.close(fd, "/tmp/build/out.o")
    assert codes(analyse(s.events)) == ["FS105"]


def test_fs103_an_o_creat_open_of_a_file_another_process_just_created_is_no_create():
    # The birth time of a file created a few ms earlier says "created" for a second
    # process's O_CREAT open (the tracer's slack): the tree had seen the file, so it is not.
    s = Stream()
    s.ev("fork", child=PID + 1)
    s.pid = PID + 1                     # the first process creates it and syncs the directory
    _written(s, D + "/t.db", "O_RDWR", "O_CREAT", created=True, sync=True)
    s.sync_dir()
    s.ev("exit", code=0)
    s.pid = PID                         # the second opens it with O_CREAT, writes and syncs
    _written(s, D + "/t.db", "O_RDWR", "O_CREAT", created=True, sync=True)
    s.exit(0)
    assert codes(analyse(s.events)) == []


# FS104 unlink-unsynced-dir (intent-gated)


def test_fs104_journal_deleted_without_dir_sync():
    s = Stream()
    fd = s.open(D + "/db", "O_RDWR")
    s.write(fd, D + "/db")
    s.fsync(fd, D + "/db")
    s.ev("unlink", path=D + "/old-journal")    # never synced by the tree: obsolete, no commit point
    assert codes(analyse(s.events)) == []
    _written(s, D + "/db-journal", "O_RDWR", "O_CREAT", created=True, sync=True)
    s.ev("unlink", path=D + "/db-journal")     # synced, then removed: the commit
    engine = analyse(s.events)
    assert codes(engine) == ["FS104"]
    assert only(engine, "FS104").message.count("removed") == 1


def test_fs104_good_twins():
    s = Stream()
    fd = s.open(D + "/db", "O_RDWR")
    s.write(fd, D + "/db")
    s.fsync(fd, D + "/db")
    s.ev("unlink", path=D + "/db-journal")
    s.sync_dir()
    assert codes(analyse(s.events)) == []
    s = Stream()                             # no intent: a cache cleaning up
    s.ev("unlink", path="/var/cache/x/entry")
    assert codes(analyse(s.events)) == []


# FS105 unsynced-at-exit


def test_fs105_dirty_at_exit():
    s = Stream()
    fd = s.open(D + "/log", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/log", 100, calls=3)
    s.exit()
    finding = only(analyse(s.events), "FS105")
    assert finding.severity == "info" and "300 bytes in 3 writes" in finding.message


def test_fs105_good_twin_and_out_of_scope():
    s = Stream()
    fd = s.open(D + "/log", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/log", 100)
    s.fsync(fd, D + "/log", syscall="fdatasync")
    s.write(3, "/dev/null", 100)
    s.write(4, "/proc/self/oom_score_adj", 1)
    s.write(5, "pipe:5", 100, kind="pipe")
    s.exit()
    assert codes(analyse(s.events)) == []


def test_scope_include_exclude_and_disabled():
    s = Stream()
    for path in (D + "/a", "/tmp/b"):
        fd = s.open(path)
        s.write(fd, path)
    assert {f.path for f in analyse(s.events).findings} == {D + "/a", "/tmp/b"}
    assert {f.path for f in analyse(s.events, config=EngineConfig(include=["/srv/*"])).findings} == {D + "/a"}
    assert {f.path for f in analyse(s.events, config=EngineConfig(exclude=["/tmp/*"])).findings} == {D + "/a"}
    assert analyse(s.events, config=EngineConfig(disabled={"FS105"})).findings == []
    overridden = analyse(s.events, config=EngineConfig(severity={"FS105": "error"}))
    assert {f.severity for f in overridden.findings} == {"error"}


def test_dir_sync_counts_when_only_its_files_are_in_scope():
    s = Stream()
    s.save(D + "/db")
    assert analyse(s.events, config=EngineConfig(include=[D + "/*"])).findings == []


def test_data_written_after_a_reported_rename_is_still_reported_at_exit():
    s = Stream()
    s.save(D + "/db", fsync=False)
    fd = s.open(D + "/db", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/db", 10)
    assert codes(analyse(s.events)) == ["FS101", "FS105"]


# FS106 ack-before-durable (intent-gated)


def test_fs106_reply_sent_before_fsync():
    s = Stream()
    fd = s.open(D + "/queue", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/queue")
    s.ev("sendto", ret=2, fd=9, kind="socket")
    s.fsync(fd, D + "/queue")
    engine = analyse(s.events)
    assert codes(engine) == ["FS106"]
    assert [e["syscall"] for e in only(engine, "FS106").evidence] == ["write", "sendto"]


def test_fs106_socket_write_counts_as_send():
    s = Stream()
    fd = s.open(D + "/queue", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/queue")
    s.write(9, "socket:9", 2, kind="socket")
    s.fsync(fd, D + "/queue")
    assert codes(analyse(s.events)) == ["FS106"]


def test_fs106_good_twins():
    s = Stream()
    fd = s.open(D + "/queue", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/queue")
    s.fsync(fd, D + "/queue")
    s.ev("sendto", ret=2, fd=9, kind="socket")
    assert codes(analyse(s.events)) == []
    s = Stream()                             # no intent anywhere: FS105 only
    fd = s.open("/var/log/app.log", "O_WRONLY", "O_APPEND")
    s.write(fd, "/var/log/app.log")
    s.ev("sendto", ret=2, fd=9, kind="socket")
    assert codes(analyse(s.events)) == ["FS105"]


def _server_with_durable_data(s: Stream, path: str = D + "/table") -> int:
    """An fd on path, which the tree has fsynced before (intent), now dirty again."""
    fd = s.open(path, "O_RDWR")
    s.write(fd, path)
    s.fsync(fd, path)
    s.write(fd, path, 8192)
    return fd


def test_fs106_counts_only_what_the_sending_process_wrote():
    """A client's request is no acknowledgement of the server's files."""
    s = Stream()
    s.ev("fork", ret=101, child=101)
    _server_with_durable_data(s)
    s.ev("sendto", pid=101, ret=20, fd=5, kind="socket", family="AF_INET")   # the client's request
    assert codes(analyse(s.events)) == ["FS105"]
    s.ev("sendto", ret=2, fd=9, kind="socket", family="AF_INET")             # the server's reply
    finding = only(analyse(s.events), "FS106")
    assert finding.pid == PID and "app (pid 100)" in finding.message


def test_fs106_netlink_and_packet_sends_are_not_the_outside_world():
    s = Stream()
    _server_with_durable_data(s)
    s.ev("sendto", ret=40, fd=7, kind="socket", family="AF_NETLINK")     # an audit record
    s.ev("sendmsg", ret=40, fd=8, kind="socket", family="AF_PACKET")
    assert codes(analyse(s.events)) == ["FS105"]
    for family in ("AF_UNIX", "AF_INET6", "AF_VSOCK", None):    # None: a socket the tracer could not tell
        t = Stream()
        _server_with_durable_data(t)
        t.ev("sendmsg", ret=2, fd=9, kind="socket", **({"family": family} if family else {}))
        assert codes(analyse(t.events)) == ["FS105", "FS106"], family


def test_fs106_a_barrier_of_the_sender_between_write_and_send_is_a_commit():
    """A write-ahead-log server: heap page written, WAL fdatasync'ed, reply."""
    s = Stream()
    _server_with_durable_data(s, D + "/base/1259")
    wal = s.open(D + "/pg_wal/0001", "O_RDWR")
    s.write(wal, D + "/pg_wal/0001", 8192)
    s.fsync(wal, D + "/pg_wal/0001", syscall="fdatasync")
    s.ev("sendto", ret=14, fd=9, kind="socket", family="AF_UNIX")
    assert codes(analyse(s.events)) == ["FS105"]           # the heap page stays dirty to the end
    s.write(wal, D + "/pg_wal/0001", 8192)                  # the next transaction's record, not synced
    s.ev("sendto", ret=14, fd=9, kind="socket", family="AF_UNIX")
    assert "FS106" in codes(analyse(s.events))


def test_fs106_group_commit_one_backends_fdatasync_covers_the_others_records():
    """Backends 101 and 102 write WAL records; 102's fdatasync, which began after both
    writes completed, covers both: 101's reply acknowledges nothing dirty. A record
    101 wrote while that fdatasync ran is not covered."""
    wal = D + "/pg_wal/0001"
    s = Stream()
    for backend in (101, 102):
        s.ev("fork", ret=backend, child=backend)
    s.ev("openat", pid=101, ret=4, fd=4, path=wal, flags=["O_RDWR"], kind="file")
    s.ev("openat", pid=102, ret=4, fd=4, path=wal, flags=["O_RDWR"], kind="file")
    s.ev("write", pid=101, ret=100, fd=4, path=wal, kind="file", calls=1, bytes=100, size_max=100, t_first=s.t + 0.001)
    s.ev("write", pid=102, ret=100, fd=4, path=wal, kind="file", calls=1, bytes=100, size_max=100, t_first=s.t + 0.001)
    s.t += 0.001
    sync = s.ev("fdatasync", pid=102, ret=0, fd=4, path=wal, kind="file", latency_us=500)
    s.ev("sendto", pid=101, ret=14, fd=9, kind="socket", family="AF_INET")
    s.ev("sendto", pid=102, ret=14, fd=9, kind="socket", family="AF_INET")
    assert codes(analyse(s.events)) == []
    # The same, but 101's record completed after the fdatasync had begun.
    events = [dict(e) for e in s.events]
    late = next(e for e in events if e["syscall"] == "write" and e["pid"] == 101)
    events.remove(late)
    late["t"] = late["t_first"] = sync["t"] - 0.0001
    events.insert(events.index(next(e for e in events if e["syscall"] == "fdatasync")), late)
    finding = only(analyse(events), "FS106")
    assert finding.pid == 101


def test_fs106_a_send_before_the_write_in_kernel_time_never_fires():
    """Two threads of one process: the send happened before the write, whatever order
    the events were handed on in (an older log, or records of two CPUs)."""
    s = Stream()
    _server_with_durable_data(s)
    send = s.ev("sendto", ret=2, fd=9, kind="socket", family="AF_INET")
    events = [e for e in s.events if e is not send]
    assert codes(analyse(events + [send])) == ["FS105", "FS106"]       # the write first: an acknowledgement
    write = events[-1]
    send = dict(send, t=round(write["t_first"] - 0.0005, 6), tid=PID + 1)
    assert codes(analyse(events + [send])) == ["FS105"]       # sent before the write completed
    run = dict(write, calls=3, bytes=3 * 8192, ret=3 * 8192, t=write["t"] + 0.002, t_first=write["t"] + 0.001)
    assert codes(analyse(events[:-1] + [dict(send, t=write["t"]), run])) == ["FS105"]   # a run begun after it


def test_fs106_calls_of_one_thread_in_the_same_microsecond_keep_their_order():
    """t is whole microseconds: a barrier or a send right after a write of the same
    thread may carry the same time, and still came after it."""
    s = Stream()
    fd = _server_with_durable_data(s)
    write = s.events[-1]
    s.ev("fdatasync", ret=0, fd=fd, path=D + "/table", kind="file", latency_us=0)
    s.events[-1]["t"] = write["t"]
    s.ev("sendto", ret=2, fd=9, kind="socket", family="AF_INET")
    assert "FS106" not in codes(analyse(s.events))
    s = Stream()
    _server_with_durable_data(s)
    s.ev("sendto", ret=2, fd=9, kind="socket", family="AF_INET")
    s.events[-1]["t"] = s.events[-2]["t"]
    assert "FS106" in codes(analyse(s.events))


def test_fs106_one_finding_per_unsynced_write_run_acknowledged():
    s = Stream()
    fd = _server_with_durable_data(s)
    for _ in range(3):
        s.ev("sendto", ret=2, fd=9, kind="socket", family="AF_INET")
    assert only(analyse(s.events), "FS106").count == 1
    s.write(fd, D + "/table", 10)
    s.ev("sendto", ret=2, fd=9, kind="socket", family="AF_INET")
    assert only(analyse(s.events), "FS106").count == 2


def _transaction(s: Stream, heap: str = D + "/base/16396", wal: str = D + "/pg_wal/0001") -> tuple[int, int]:
    """A backend inside a transaction: a heap page written (the table fsynced once before:
    intent), the statement's reply on connection fd 9, the commit record written. What
    follows is each test's: the commit's fdatasync and reply, or not."""
    heap_fd = _server_with_durable_data(s, heap)
    s.ev("sendto", ret=20, fd=9, kind="socket", family="AF_UNIX")             # "UPDATE 1"
    wal_fd = s.open(wal, "O_RDWR")
    s.write(wal_fd, wal, 8192)
    return heap_fd, wal_fd


def test_fs106_a_statements_reply_inside_a_transaction_is_judged_by_the_commits_reply():
    """PostgreSQL: heap page, "UPDATE 1", commit record, WAL fdatasync, "COMMIT" on the same
    connection with nothing of the backend left dirty: the statement's reply promised nothing
    durable. A post-commit truncation between the barrier and the reply writes no byte."""
    s = Stream()
    _, wal_fd = _transaction(s)
    s.fsync(wal_fd, D + "/pg_wal/0001", syscall="fdatasync")
    s.ev("truncate", path=D + "/base/16384", length=0)                         # the old relfilenode
    s.ev("sendto", ret=18, fd=9, kind="socket", family="AF_UNIX")             # "COMMIT"
    assert codes(analyse(s.events)) == ["FS105"]                               # the heap page, at the end


def test_fs106_a_send_run_is_judged_at_its_first_send_and_again_at_its_last():
    """A run of sends (the probe folds one thread's sends on one socket): "COMMIT" and the
    next replies, while another thread writes a heap page between the run's first and last
    send. The first send finds nothing dirty (a commit's reply, the statement's reply before
    it promised nothing); the page, written before the run's last send, is acknowledged."""
    heap = D + "/base/16396"
    s = Stream()
    heap_fd, wal_fd = _transaction(s, heap)
    s.fsync(wal_fd, D + "/pg_wal/0001", syscall="fdatasync")
    s.t += 0.001
    page = s.ev("write", tid=PID + 1, ret=8192, fd=heap_fd, path=heap, kind="file", calls=1, bytes=8192,
                size_max=8192, t_first=round(s.t + 0.001, 6))
    run = s.ev("sendto", ret=40, fd=9, kind="socket", family="AF_UNIX", calls=3, bytes=40, size_max=18,
               t_first=round(page["t"] - 0.0015, 6))
    finding = only(analyse(s.events), "FS106")
    assert [(e["syscall"], e["tid"], e["t"]) for e in finding.evidence] == [
        ("write", PID + 1, page["t"]), ("sendto", PID, run["t"])]


def test_fs106_a_reply_followed_by_a_barrier_and_new_dirty_data_was_an_acknowledgement():
    """Reply, fdatasync, the next request's write, its reply: the first reply went out before
    the barrier, and the next one is no commit's reply (it has data of its own dirty)."""
    s = Stream()
    _, wal_fd = _transaction(s)
    first_reply = s.events[-3]
    s.fsync(wal_fd, D + "/pg_wal/0001", syscall="fdatasync")
    s.write(wal_fd, D + "/pg_wal/0001", 8192)
    s.ev("sendto", ret=5, fd=9, kind="socket", family="AF_UNIX")
    s.fsync(wal_fd, D + "/pg_wal/0001", syscall="fdatasync")
    findings = [f for f in analyse(s.events).findings if f.rule == "FS106"]
    assert {f.path for f in findings} == {D + "/base/16396", D + "/pg_wal/0001"}
    heap = next(f for f in findings if f.path.endswith("/16396"))
    assert (heap.evidence[-1]["syscall"], heap.evidence[-1]["t"]) == ("sendto", first_reply["t"])


@pytest.mark.parametrize("then", ["another thread's barrier", "another connection's reply", "close", "exit", "end"])
def test_fs106_replies_no_commits_reply_follows_are_acknowledgements(then):
    """The commit's reply is the sending thread's: a barrier of another thread (Redis's
    appendfsync everysec fsyncs on a background thread) followed by a clean reply, a clean
    reply after a barrier on another connection, or a connection that ends first, leave the
    reply an acknowledgement of the heap page."""
    s = Stream()
    _, wal_fd = _transaction(s)
    if then == "another thread's barrier":
        s.ev("fdatasync", ret=0, fd=wal_fd, path=D + "/pg_wal/0001", kind="file", latency_us=500, tid=PID + 1)
        s.ev("sendto", ret=18, fd=9, kind="socket", family="AF_UNIX")
    elif then == "another connection's reply":
        s.fsync(wal_fd, D + "/pg_wal/0001", syscall="fdatasync")
        s.ev("sendto", ret=18, fd=10, kind="socket", family="AF_UNIX")
    elif then == "close":
        s.ev("close", fd=9, path="socket:9", kind="socket")
        s.fsync(wal_fd, D + "/pg_wal/0001", syscall="fdatasync")
        s.ev("sendto", ret=18, fd=9, kind="socket", family="AF_UNIX")          # a new connection on fd 9
    elif then == "exit":
        s.exit(0)
    assert "FS106" in codes(analyse(s.events)), then


def test_a_findings_runtime_and_fix_are_the_calling_images_not_a_later_execs():
    """A C program renames an unsynced file, then execs python3 (cpython): the finding's
    fix is the generic one, not Python's; and a Python image's end finding keeps cpython's
    fix after it execs a C program."""
    s = Stream()
    s.save(D + "/db", fsync=False)
    s.ev("exec", path="/usr/bin/python3", argv=["python3", "tool.py"])
    s.ev("runtime", name="cpython", version="3.11.2")
    fd = s.open(D + "/queue", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/queue")
    s.fsync(fd, D + "/queue")
    s.write(fd, D + "/queue")
    s.ev("exec", path="/usr/bin/true", argv=["true"])
    s.exit(0)
    engine = analyse(s.events)
    fs101, fs105 = only(engine, "FS101"), only(engine, "FS105")
    assert (fs101.runtime, fs101.fix) == (None, RULES_BY_CODE["FS101"].fix)
    assert fs105.runtime == "cpython" and "os.fsync" in fs105.fix, fs105.fix


# FS107 truncate-in-place


def test_fs107_truncate_and_rewrite():
    s = Stream()
    fd = s.open(D + "/config", "O_WRONLY", "O_CREAT", "O_TRUNC", size_before=1200)
    s.write(fd, D + "/config", 1300)
    s.fsync(fd, D + "/config")
    engine = analyse(s.events)
    assert codes(engine) == ["FS107"]
    assert [e["syscall"] for e in only(engine, "FS107").evidence] == ["openat", "write"]


def test_fs107_ftruncate_to_zero_and_rewrite():
    s = Stream()
    fd = s.open(D + "/config", "O_RDWR")
    s.ev("ftruncate", fd=fd, path=D + "/config", kind="file", length=0, size_before=50)
    s.write(fd, D + "/config", 60)
    s.fsync(fd, D + "/config")
    assert codes(analyse(s.events)) == ["FS107"]


def test_fs107_good_twin_empty_or_new_file():
    s = Stream()
    fd = s.open(D + "/config", "O_WRONLY", "O_CREAT", "O_TRUNC", size_before=0)
    s.write(fd, D + "/config", 1300)
    s.fsync(fd, D + "/config")
    fd = s.open(D + "/other", "O_WRONLY", "O_CREAT", "O_TRUNC")
    s.write(fd, D + "/other", 1300)
    s.fsync(fd, D + "/other")
    assert codes(analyse(s.events)) == []


# FS201 fsync-retry-after-error / FS202 fsync-error-ignored


def test_fs201_retry_after_failed_fsync():
    s = Stream()
    fd = s.open(D + "/db", "O_RDWR")
    s.write(fd, D + "/db")
    s.fsync(fd, D + "/db", ret="EIO")
    s.fsync(fd, D + "/db")
    s.exit(0)
    engine = analyse(s.events)
    assert codes(engine) == ["FS201"]
    assert [e["ret"] for e in only(engine, "FS201").evidence] == ["EIO", 0]


def test_fs202_failed_fsync_then_exit_0():
    s = Stream()
    fd = s.open(D + "/db", "O_RDWR")
    s.write(fd, D + "/db")
    s.fsync(fd, D + "/db", ret="EIO")
    s.exit(0)
    assert "FS202" in codes(analyse(s.events))


def test_fs202_failed_fsync_then_rename():
    s = Stream()
    fd = s.open(D + "/db.tmp")
    s.write(fd, D + "/db.tmp")
    s.fsync(fd, D + "/db.tmp", ret="ENOSPC", syscall="fdatasync")
    s.rename(D + "/db.tmp", D + "/db")
    s.sync_dir()
    s.exit(1)
    engine = analyse(s.events)
    assert codes(engine) == ["FS101", "FS202"]


def test_fs202_good_twins_exit_nonzero_or_signal():
    for exit_ in ({"code": 1, "signal": None}, {"code": None, "signal": 6}):
        s = Stream()
        fd = s.open(D + "/db", "O_RDWR")
        s.write(fd, D + "/db")
        s.fsync(fd, D + "/db", ret="EIO")
        s.exit(**exit_)
        assert "FS202" not in codes(analyse(s.events))
        assert "FS201" not in codes(analyse(s.events))


def test_fs202_exit_status_given_by_finish():
    s = Stream()
    fd = s.open(D + "/db", "O_RDWR")
    s.write(fd, D + "/db")
    s.fsync(fd, D + "/db", ret="EIO")
    assert "FS202" not in codes(analyse(s.events))          # never saw the tree exit (detach)
    assert "FS202" in codes(analyse(s.events, exit_status={"code": 0, "signal": None}))
    assert "FS202" not in codes(analyse(s.events, exit_status=3))


def test_dir_fsync_einval_is_not_a_failure():
    s = Stream()
    fd = s.open(D, "O_RDONLY", kind="dir")
    s.fsync(fd, D, kind="dir", ret="EINVAL")
    s.fsync(fd, D, kind="dir", ret="EINVAL")
    s.exit(0)
    assert codes(analyse(s.events)) == []


# FS203 write-error-ignored


def test_fs203_short_write_then_fsync():
    s = Stream()
    fd = s.open(D + "/db", "O_RDWR")
    s.ev("write", ret=100, fd=fd, path=D + "/db", kind="file", count=4096)
    s.fsync(fd, D + "/db")
    s.exit(0)
    engine = analyse(s.events)
    assert codes(engine) == ["FS203"]
    assert "3996 bytes" in only(engine, "FS203").message


def test_fs203_enospc_then_exit_0():
    s = Stream()
    fd = s.open(D + "/db", "O_RDWR")
    s.ev("write", ret="ENOSPC", fd=fd, path=D + "/db", kind="file", count=4096)
    s.exit(0)
    assert codes(analyse(s.events)) == ["FS203"]


def test_fs203_good_twins_rewritten_or_exit_nonzero():
    s = Stream()
    fd = s.open(D + "/db", "O_RDWR")
    s.ev("write", ret=100, fd=fd, path=D + "/db", kind="file", count=4096)
    s.ev("write", ret=3996, fd=fd, path=D + "/db", kind="file", count=3996)
    s.fsync(fd, D + "/db")
    s.exit(0)
    assert codes(analyse(s.events)) == []
    s = Stream()
    fd = s.open(D + "/db", "O_RDWR")
    s.ev("write", ret="ENOSPC", fd=fd, path=D + "/db", kind="file", count=4096)
    s.exit(1)
    assert codes(analyse(s.events)) == []


# FS204 close-error-ignored


def test_fs204_close_error_then_exit_0():
    s = Stream()
    fd = s.open("/mnt/nfs/out")
    s.write(fd, "/mnt/nfs/out")
    s.fsync(fd, "/mnt/nfs/out")
    s.close(fd, "/mnt/nfs/out", ret="EIO")
    s.exit(0)
    assert codes(analyse(s.events)) == ["FS204"]


def test_fs204_good_twin_exit_nonzero():
    s = Stream()
    fd = s.open("/mnt/nfs/out")
    s.write(fd, "/mnt/nfs/out")
    s.fsync(fd, "/mnt/nfs/out")
    s.close(fd, "/mnt/nfs/out", ret="EIO")
    s.exit(1)
    assert codes(analyse(s.events)) == []


# FS301 sync-file-range-not-durable


def test_fs301_sync_file_range_only_at_end():
    s = Stream()
    fd = s.open(D + "/log", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/log")
    s.ev("sync_file_range", fd=fd, path=D + "/log", kind="file", flags=["SYNC_FILE_RANGE_WRITE"])
    assert codes(analyse(s.events)) == ["FS301"]      # FS105 defers to the specific rule
    assert codes(analyse(s.events, config=EngineConfig(disabled={"FS301"}))) == ["FS105"]


def test_fs301_good_twin_sync_file_range_then_fdatasync():
    s = Stream()
    fd = s.open(D + "/log", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/log")
    s.ev("sync_file_range", fd=fd, path=D + "/log", kind="file", flags=["SYNC_FILE_RANGE_WRITE"])
    s.fsync(fd, D + "/log", syscall="fdatasync")
    assert codes(analyse(s.events)) == []


# FS302 odirect-without-sync


def test_fs302_odirect_without_sync():
    s = Stream()
    fd = s.open(D + "/data", "O_RDWR", "O_DIRECT")
    s.write(fd, D + "/data", o_direct=True)
    engine = analyse(s.events)
    assert codes(engine) == ["FS302"]
    assert engine.processes[PID].io.o_direct_writes == 1


def test_fs302_good_twins_odsync_or_fdatasync():
    s = Stream()
    fd = s.open(D + "/data", "O_RDWR", "O_DIRECT", "O_DSYNC")
    s.write(fd, D + "/data", o_direct=True, o_sync=True)
    fd = s.open(D + "/data2", "O_RDWR", "O_DIRECT")
    s.write(fd, D + "/data2", o_direct=True)
    s.fsync(fd, D + "/data2", syscall="fdatasync")
    assert codes(analyse(s.events)) == []


# FS303 mmap-without-msync


def test_fs303_munmap_without_msync():
    s = Stream()
    fd = s.open(D + "/map", "O_RDWR")
    s.ev("mmap", fd=fd, path=D + "/map", kind="file", addr=0x7000, length=4096,
         prot=["PROT_READ", "PROT_WRITE"], flags=["MAP_SHARED"])
    s.ev("munmap", addr=0x7000, length=4096, path=D + "/map")
    assert codes(analyse(s.events)) == ["FS303"]


def test_fs303_good_twins_msync_or_private_mapping():
    s = Stream()
    fd = s.open(D + "/map", "O_RDWR")
    s.ev("mmap", fd=fd, path=D + "/map", kind="file", addr=0x7000, length=4096,
         prot=["PROT_READ", "PROT_WRITE"], flags=["MAP_SHARED"])
    s.ev("msync", addr=0x7000, length=4096, flags=["MS_SYNC"], path=D + "/map")
    s.ev("munmap", addr=0x7000, length=4096, path=D + "/map")
    s.ev("mmap", fd=fd, path=D + "/map", kind="file", addr=0x9000, length=4096,
         prot=["PROT_READ", "PROT_WRITE"], flags=["MAP_PRIVATE"])
    s.ev("munmap", addr=0x9000, length=4096, path=D + "/map")
    assert codes(analyse(s.events)) == []


# FS304 whole-fs-sync


def test_fs304_sync_is_reported_but_covers_everything():
    s = Stream()
    s.save(D + "/db", fsync=False, dir_sync=False, tmp=D + "/db.tmp")
    fd = s.open(D + "/other")
    s.write(fd, D + "/other")
    s.ev("sync")
    s.exit()
    engine = analyse(s.events)
    assert codes(engine) == ["FS101", "FS304"]        # the rename came before the sync
    assert only(engine, "FS304").path is None


def test_fs304_good_twin_fsync():
    s = Stream()
    fd = s.open(D + "/other")
    s.write(fd, D + "/other")
    s.fsync(fd, D + "/other")
    assert codes(analyse(s.events)) == []


# FS901 untraced-io, FS902 events-lost


def test_fs901_io_uring():
    s = Stream()
    s.ev("io_uring_setup", ret=5, fd=5)
    assert codes(analyse(s.events)) == ["FS901"]


def test_fs902_lost_events():
    s = Stream()
    s.ev("lost", pid=0, count=7)
    s.ev("lost", pid=0, count=3)
    engine = analyse(s.events)
    assert codes(engine) == ["FS902"]
    assert engine.counts.lost_events == 10
    assert "10 events" in only(engine, "FS902").message


def test_fs9xx_good_twin():
    s = Stream()
    s.ev("lost", pid=0, count=0)
    s.ev("socket", ret=5, fd=5)
    engine = analyse(s.events)
    assert codes(engine) == []
    assert list(engine.processes) == [PID]


# Processes, the report and its renderings


def _report(engine: Engine) -> dict:
    return build_report(engine, mode="report", target={"argv": [], "pid": None, "exit": None},
                        started_at="2026-01-01T00:00:00.000Z", duration_s=0.5, tool_version="0.1.0")


def test_processes_and_report():
    s = Stream(argv=("python3", "app.py"))
    s.ev("fork", ret=101, child=101)
    s.ev("exec", pid=101, path="/usr/bin/cp", argv=["cp", "a", "b"])
    s.ev("exit", pid=101, code=0, signal=None)
    s.save(D + "/db", fsync=False)
    s.exit(0)
    engine = analyse(s.events)
    assert engine.processes[101].ppid == PID and engine.processes[101].argv == ["cp", "a", "b"]
    report = _report(engine)
    written = StringIO()
    write_json(report, written)      # its findings are read back as they are written
    assert json.loads(written.getvalue())["findings"] == list(report["findings"])
    assert report["schema"] == "fsaudit.report/1" and report["complete"] is True
    assert report["target"] == {"argv": ["python3", "app.py"], "pid": PID, "exit": {"code": 0, "signal": None}}
    assert report["counts"]["processes"] == 2 and report["counts"]["events"] == len(s.events)
    io = report["processes"][0]["io"]
    assert io["writes"] == 4 and io["bytes_written"] == 32768 and io["write_size_p50"] == 8192
    assert io["renames"] == 1 and io["dir_syncs"] == 1
    assert report["files"] == [{"path": D + "/db", "role": "data", "writes": 4, "bytes_written": 32768, "syncs": 0,
                                "dirty_bytes_at_end": 32768, "last_sync_at": None}]
    assert report["summary"] == {"error": 1, "warning": 0, "info": 0}   # FS105 leaves the data to FS101
    assert "python3 (pid 100)" in report["findings"][0]["message"]
    assert exit_status(report, "error") == 1 and exit_status(report, "never") is None
    text = render_text(report, "error")
    assert "FS101 rename-unsynced-data" in text and "fix:" in text
    sarif = render_sarif(report, "error")
    assert sarif["version"] == "2.1.0" and len(sarif["runs"][0]["tool"]["driver"]["rules"]) == len(RULES)
    assert sarif["runs"][0]["results"][0]["ruleId"] == "FS101"
    junit = ET.fromstring(render_junit(report, "error"))
    assert junit.get("failures") == "1" and int(junit.get("tests")) == len(RULES)


def test_a_finding_names_the_image_that_made_the_call_and_processes_list_each_exec():
    """A shell forks, the child writes, exec's sqlite3, which writes, then exec's rm,
    whose argv the tracer could not read: each finding names the program that made
    its call (even when the rule decides at the end), never the image before an exec."""
    s = Stream(argv=("bash", "-c", "sqlite3 db"))
    s.ev("fork", ret=101, child=101)
    s.ev("fork", ret=102, child=102)   # a child that exec's at once: its moment as bash is not listed
    s.pid = 101
    fd = s.open(D + "/before", "O_RDWR", "O_DIRECT")
    s.write(fd, D + "/before", o_direct=True)
    s.ev("exec", path="/usr/bin/sqlite3", argv=["sqlite3", "db"])
    fd = s.open(D + "/after", "O_RDWR", "O_DIRECT")
    s.write(fd, D + "/after", o_direct=True)
    s.ev("exec", path="/usr/bin/rm")
    s.pid = 102
    s.ev("exec", path="/usr/bin/true", argv=["true"])
    engine = analyse(s.events)
    messages = {f.path.rsplit("/", 1)[1]: f.message for f in engine.findings if f.rule == "FS302"}
    assert messages["before"].startswith("bash (pid 101)"), messages
    assert messages["after"].startswith("sqlite3 (pid 101)"), messages
    assert engine.process_label(101) == "rm (pid 101)"
    report = _report(engine)
    assert [(p["pid"], p["exe"], p["argv"]) for p in report["processes"]] == [
        (PID, "/usr/bin/bash", ["bash", "-c", "sqlite3 db"]),
        (101, "/usr/bin/bash", ["bash", "-c", "sqlite3 db"]),
        (101, "/usr/bin/sqlite3", ["sqlite3", "db"]),
        (101, "/usr/bin/rm", []),
        (102, "/usr/bin/true", ["true"]),
    ]
    assert report["processes"][2]["io"]["o_direct_writes"] == 1 and report["processes"][2]["exec_at"] > 0
    assert report["counts"]["processes"] == 3


def test_clean_report():
    s = Stream()
    s.save(D + "/db")
    s.exit(0)
    report = _report(analyse(s.events))
    assert render_text(report, "error") == "No findings.\n"
    assert exit_status(report, "info") is None
    assert report["processes"][0]["io"]["fsync_latency_p50_us"] == 500


def test_incomplete_report():
    s = Stream()
    s.ev("lost", pid=0, count=2)
    report = _report(analyse(s.events))
    assert report["complete"] is False and report["counts"]["lost_events"] == 2
    assert "incomplete" in render_text(report, "error")


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_catalogue(rule):
    assert rule.code.startswith("FS") and rule.name and rule.severity in ("error", "warning", "info")
    assert rule.summary and rule.fix


def test_suppression_by_rule_and_path_glob():
    from fsaudit.analysis.config import Suppression

    s = Stream()
    fd = s.open("/tmp/scratch")
    s.write(fd, "/tmp/scratch")
    config = EngineConfig(suppressions=[Suppression("FS105", "/tmp/*", "scratch space")])
    assert analyse(s.events, config=config).findings == []


# Roles (rules.md, "role"): only data files above info, in FS106 and lending intent


def _written(s: Stream, path: str, *flags: str, nbytes: int = 100, sync: bool = False, **extra) -> int:
    fd = s.open(path, *flags, **extra)
    s.write(fd, path, nbytes, **({"o_append": True} if "O_APPEND" in flags else {}))
    if sync:
        s.fsync(fd, path)
    s.close(fd, path)
    return fd


def test_roles_from_name_and_conduct():
    s = Stream()
    _written(s, D + "/db", "O_RDWR", sync=True)
    _written(s, D + "/app.log", "O_WRONLY", "O_CREAT", "O_TRUNC")
    _written(s, D + "/events", "O_WRONLY", "O_APPEND")               # only ever appended to
    _written(s, D + "/000003.log", "O_WRONLY", "O_APPEND", sync=True)   # synced by the tree: data
    _written(s, D + "/LOCK", "O_WRONLY", "O_CREAT")
    held = s.open(D + "/held", "O_RDWR", "O_CREAT")                 # opened for writing, never written
    s.close(held, D + "/held")
    _written(s, D + "/scratch", created=True)
    s.ev("unlink", path=D + "/scratch")                             # created and removed: temp
    _written(s, D + "/__pycache__/m.cpython-311.pyc")
    engine = analyse(s.events)
    roles = {path: state.role for path, state in engine.files.items() if not state.is_dir}
    assert roles == {D + "/db": "data", D + "/app.log": "log", D + "/events": "log", D + "/000003.log": "data",
                     D + "/LOCK": "lock", D + "/held": "lock", D + "/__pycache__/m.cpython-311.pyc": "cache"}
    assert engine.removed_roles == {D + "/scratch": "temp"}
    assert engine.files[D + "/db"].is_data and not engine.files[D + "/events"].is_data
    # The cache file is out of scope by default, and counted as left out.
    assert not engine.files[D + "/__pycache__/m.cpython-311.pyc"].in_scope
    assert _report(engine)["scope"] == {"excluded": {"cache": 1, "stdio": 0, "volatile": 0}, "included": []}


def test_a_log_beside_a_synced_data_file_gets_no_intent_and_nothing_above_info():
    s = Stream()
    _written(s, D + "/db", "O_RDWR", "O_CREAT", sync=True, created=True)
    fd = s.open(D + "/app.log", "O_WRONLY", "O_CREAT", "O_TRUNC")
    s.write(fd, D + "/app.log", 100)
    s.ev("sendto", ret=2, fd=9, kind="socket")      # a reply while the log is dirty: no FS106
    s.rename(D + "/app.log", D + "/app.log.1")      # dirty, dir never synced: FS101, FS102 at info
    s.exit(0)
    engine = analyse(s.events)
    assert not engine.has_intent(engine.files[D + "/app.log.1"])
    by_rule = {f.rule: f for f in engine.findings}
    assert sorted(by_rule) == ["FS101", "FS102", "FS103"]
    assert (by_rule["FS103"].severity, by_rule["FS103"].role) == ("warning", "data")
    for code, severity in (("FS101", "error"), ("FS102", "warning")):
        assert (by_rule[code].severity, by_rule[code].role) == ("info", "log")
        assert by_rule[code].message.endswith(f"(info, not {severity}: a log file, not data)")
    report = _report(engine)
    assert {f["role"] for f in report["findings"]} == {"data", "log"}
    assert {f["path"]: f["role"] for f in report["files"]} == {D + "/db": "data", D + "/app.log.1": "log"}


def test_a_severity_override_does_not_lift_a_log_above_info():
    s = Stream()
    _written(s, D + "/app.log", "O_WRONLY", "O_APPEND")
    s.exit(0)
    finding = only(analyse(s.events, config=EngineConfig(severity={"FS105": "error"})), "FS105")
    assert (finding.severity, finding.role) == ("info", "log")
    assert finding.message.endswith("(info, not error: a log file, not data)")


def test_the_configured_role_decides_first():
    from fsaudit.analysis.globs import Glob

    s = Stream()
    _written(s, D + "/app.log", "O_WRONLY", "O_APPEND")
    s.rename(D + "/app.log", D + "/journal.log")
    _written(s, "/run/app/state")
    config = EngineConfig(roles=[(Glob("/srv/app/*.log"), "data"), (Glob("/run/app/**"), "data")])
    engine = analyse(s.events, config=config, header={"mounts": [["/", "ext4"], ["/run", "tmpfs"]]})
    assert {(f.rule, f.role, f.severity) for f in engine.findings} == {
        ("FS101", "data", "error"), ("FS102", "data", "warning"), ("FS105", "data", "info")}
    assert analyse(s.events, header={"mounts": [["/", "ext4"], ["/run", "tmpfs"]]}).files["/run/app/state"].role \
        == "volatile"


def test_the_inherited_stdio_target_is_out_of_scope_unless_included():
    s = Stream()
    s.ev("inherit", fd=1, path=D + "/build.log", kind="file", flags=["O_WRONLY"])
    s.ev("inherit", fd=5, path=D + "/kept", kind="file", flags=["O_WRONLY"])   # not stdio: in scope
    s.write(1, D + "/build.log", 100, calls=3)
    s.write(5, D + "/kept", 100)
    s.exit(0)
    engine = analyse(s.events)
    assert [(f.rule, f.path) for f in engine.findings] == [("FS105", D + "/kept")]
    assert _report(engine)["scope"]["excluded"]["stdio"] == 1
    included = analyse(s.events, config=EngineConfig(include_roles=frozenset({"stdio"})))
    assert {(f.path, f.role, f.severity) for f in included.findings} == {
        (D + "/build.log", "stdio", "info"), (D + "/kept", "data", "info")}
    assert _report(included)["scope"] == {"excluded": {"cache": 0, "volatile": 0}, "included": ["stdio"]}


def test_volatile_is_decided_per_mount_from_the_log_header():
    mounts = [["/", "ext4"], ["/run", "tmpfs"], ["/run/disk", "ext4"], ["/srv/ram", "ramfs"]]
    s = Stream()
    for path in ("/run/app.pid.tmp", "/run/disk/kept", "/running/kept", "/srv/ram/x", "/srv/ram", D + "/kept"):
        _written(s, path)
    s.exit(0)
    engine = analyse(s.events, header={"mounts": mounts})
    assert sorted(f.path for f in engine.findings) == ["/run/disk/kept", "/running/kept", D + "/kept"]
    assert _report(engine)["scope"]["excluded"]["volatile"] == 3
    assert len(analyse(s.events).findings) == 6     # a log without a mount table: nothing is volatile
    included = analyse(s.events, header={"mounts": mounts}, config=EngineConfig(include_roles=frozenset({"volatile"})))
    assert {f.path: f.role for f in included.findings}["/srv/ram/x"] == "volatile"


def test_unix_socket_and_fifo_names_are_never_files():
    s = Stream()
    _written(s, D + "/db", "O_RDWR", sync=True)               # intent in the directory
    s.ev("bind", fd=7, path=D + "/.s.PGSQL.5432")
    s.ev("unlink", path=D + "/.s.PGSQL.5432")
    s.ev("mknodat", path=D + "/fifo", type="fifo")
    s.ev("unlink", path=D + "/fifo")
    s.ev("inherit", fd=4, path="socket:[99]", kind="socket", bound=D + "/.s.old")   # bound before an attach
    s.ev("unlink", path=D + "/.s.old")
    s.ev("openat", ret=8, fd=8, path=D + "/pipe", flags=["O_WRONLY", "O_CREAT", "O_TRUNC"], mode=0o644, kind="other")
    s.write(8, D + "/pipe", 10, kind="other")
    s.ev("unlink", path=D + "/pipe")
    s.exit(0)
    assert codes(analyse(s.events)) == []
    _written(s, D + "/old.db", "O_RDWR", sync=True)
    s.ev("unlink", path=D + "/old.db")                        # a synced file: its removal is pending
    assert codes(analyse(s.events)) == ["FS104"]


def test_a_temp_file_takes_no_intent_from_its_directory_but_a_synced_journal_keeps_its_own():
    s = Stream()
    _written(s, D + "/db", "O_RDWR", sync=True)
    _written(s, D + "/scratch", created=True)                 # created, never synced, removed: temp
    s.ev("unlink", path=D + "/scratch")
    s.exit(0)
    assert codes(analyse(s.events)) == []
    _written(s, D + "/db-journal", created=True, sync=True)   # synced, then deleted to commit
    s.ev("unlink", path=D + "/db-journal")
    finding = only(analyse(s.events), "FS104")
    assert (finding.severity, finding.role) == ("warning", "data")


def test_a_synced_pid_file_and_a_synced_name_linked_elsewhere_are_not_data_when_removed():
    s = Stream()
    _written(s, D + "/postmaster.pid", "O_RDWR", "O_CREAT", "O_EXCL", created=True, sync=True)   # PostgreSQL's
    s.ev("unlink", path=D + "/postmaster.pid")
    objects = D + "/objects/ab"
    _written(s, objects + "/tmp_obj_x", "O_RDWR", "O_CREAT", "O_EXCL", created=True, sync=True)   # git's
    s.ev("link", path=objects + "/tmp_obj_x", path2=objects + "/cdef")
    s.ev("unlink", path=objects + "/tmp_obj_x")
    s.exit(0)
    engine = analyse(s.events)
    assert engine.removed_roles == {D + "/postmaster.pid": "lock", objects + "/tmp_obj_x": "temp"}
    assert {(f.rule, f.target_path, f.severity, f.role) for f in engine.findings} == {
        ("FS102", objects + "/cdef", "warning", "data")}            # the object's own name: still data
    # Removing a lock or a temp name publishes no state: no FS104, though each was synced.


def test_a_lock_file_truncated_and_never_written_has_no_dirty_data():
    s = Stream()
    fd = s.open(D + "/postmaster.opts", "O_WRONLY", "O_TRUNC", existed=True)
    s.close(fd, D + "/postmaster.opts")
    s.exit(0)
    engine = analyse(s.events)
    assert codes(engine) == [] and engine.files[D + "/postmaster.opts"].role == "lock"


def test_fs106_counts_only_data_files():
    s = Stream()
    _written(s, D + "/db", "O_RDWR", sync=True)
    fd = s.open(D + "/access.log", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/access.log", 80, o_append=True)
    s.ev("sendto", ret=2, fd=9, kind="socket")
    s.exit(0)
    assert codes(analyse(s.events)) == ["FS105"]


# Settled files: compacted state (issue #7: memory with 100 000 files)


def _settling_story() -> Stream:
    """Files that settle (closed or renamed with nothing pending), then are named again:
    reopened and written, a failed close, a failed fsync, moved with their directory,
    covered by sync(), unlinked; and a created file whose directory is never synced."""
    s = Stream()
    for name in ("a", "d", "sub/x", "sub/y", "gone"):
        path = f"{D}/{name}"
        fd = s.open(path, created=True)
        s.write(fd, path)
        s.fsync(fd, path)
        s.close(fd, path)
    s.sync_dir()
    s.save(D + "/b")
    fd = s.open(D + "/a", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/a", 10)
    s.close(fd, D + "/a")
    fd = s.open(D + "/d", "O_RDONLY")
    s.close(fd, D + "/d", ret="EIO")
    fd = s.open(D + "/b", "O_RDONLY")
    s.fsync(fd, D + "/b", ret="EIO")
    s.close(fd, D + "/b")
    s.rename(D + "/sub", D + "/moved")
    fd = s.open(D + "/moved/x", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/moved/x", 5)
    s.close(fd, D + "/moved/x")
    s.ev("sync")
    s.ev("unlink", path=D + "/gone")
    fd = s.open("/srv/other/new", created=True)
    s.write(fd, "/srv/other/new")
    s.fsync(fd, "/srv/other/new")
    s.close(fd, "/srv/other/new")
    s.exit(0)
    return s


def test_settled_files_are_compacted():
    engine = analyse(_settling_story().events)
    # The others were named again and are dirty, failed or gone.
    assert {path for path, state in engine.files.items() if isinstance(state, SettledFile)} == {
        D + "/moved/y", "/srv/other/new"}
    assert codes(engine) == ["FS103", "FS104", "FS202", "FS204", "FS304"]


def test_settling_is_invisible_in_findings_and_report(monkeypatch):
    settled = analyse(_settling_story().events)
    monkeypatch.setattr(Engine, "settle", lambda self, path: None)
    kept = analyse(_settling_story().events)
    assert not any(isinstance(state, SettledFile) for state in kept.files.values())
    assert settled.findings == kept.findings
    assert _report(settled) == _report(kept)


def test_a_file_keeps_its_serial_through_settling_and_renames():
    """A reader follows a file by its serial (fsaudit.analysis.snapshot): the same number as
    it settles, is revived, moves with a rename or its directory's; each move is recorded."""
    s = Stream()
    for name in ("a", "sub/b"):
        fd = s.open(f"{D}/{name}")
        s.write(fd, f"{D}/{name}")
        s.fsync(fd, f"{D}/{name}")
        s.close(fd, f"{D}/{name}")
    engine = Engine()
    for event in s.events:
        engine.feed(event)
    a, b, sub = engine.files[D + "/a"], engine.files[D + "/sub/b"], engine.files[D + "/sub"]
    assert isinstance(a, SettledFile) and isinstance(b, SettledFile) and sub.is_dir
    assert len({a.serial, b.serial, sub.serial}) == 3 and engine.move_count == 0
    fd = s.open(D + "/a", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/a")
    s.rename(D + "/a", D + "/c")
    s.rename(D + "/sub", D + "/moved")
    s.ev("unlink", path=D + "/moved/b")
    for event in s.events[-5:]:
        engine.feed(event)
    c = engine.files[D + "/c"]
    assert isinstance(c, FileState) and c.serial == a.serial and c.renamed_from == D + "/a"
    # The rename, the directory's and the file under it, the unlink.
    assert [state.serial for state in engine.recent_moves] == [a.serial, sub.serial, b.serial, b.serial]
    assert engine.move_count == 4 and engine.recent_moves[0] is c
    assert engine.recent_moves[-1].unlinked and D + "/moved/b" not in engine.files


def test_a_file_with_anything_in_progress_is_not_settled():
    """SettledFile keeps only some fields: each of the others must either keep a file
    from settling when it is set, or be moot once settled. A field added to FileState
    without deciding which fails here."""
    kept = set(SettledFile.__slots__)
    defaults = {**{field.name: field.default for field in dataclasses.fields(FileState)}, **RARELY}
    for name, default in defaults.items():
        if name in kept or name in MOOT_WHEN_SETTLED or name in ("path", "is_dir"):
            continue
        state = FileState("/srv/f", False, True)
        assert state.settled
        setattr(state, name, {"set": True} if default is None else not default)
        assert not state.settled, f"FileState.{name} set, yet the file would be settled (and it dropped)"


def test_a_settled_file_reads_every_other_field_as_its_default():
    state = FileState("/srv/f", False, True, writes=3, syncs=1)
    settled = SettledFile(state)
    for field in dataclasses.fields(FileState):
        if field.name not in SettledFile.__slots__ and field.name != "is_dir":
            assert getattr(settled, field.name) == field.default, field.name
    assert all(getattr(settled, name) == default for name, default in RARELY.items())
    revived = settled.revive()
    assert all(getattr(revived, f.name) == getattr(state, f.name) for f in dataclasses.fields(FileState))


def test_settling_and_reviving_copy_every_kept_field():
    """SettledFile's copies are written out field by field: one left out of them (or a slot
    added without one) loses its value here."""
    values = {name: f"value of {name}" for name in SettledFile.__slots__}
    values["sync_latencies_us"] = [7, 9]
    state = FileState(is_dir=False, **values)
    settled = SettledFile(state)
    assert {name: getattr(settled, name) for name in SettledFile.__slots__} == {**values, "sync_latencies_us": (7, 9)}
    revived = settled.revive()
    assert revived.__class__ is FileState and not revived.is_dir
    assert {name: getattr(revived, name) for name in SettledFile.__slots__} == values


def test_a_rule_mark_keeps_the_file_until_the_rule_forgets_it():
    """Rule state lives in FileState.marks under the rule's code: set, the file does not settle."""
    rule = RULES_BY_CODE["FS204"]
    state = FileState("/srv/f", False, True)
    rule.remember(state, {"syscall": "close"})
    assert rule.recall(state) == {"syscall": "close"} and not state.settled
    assert RULES_BY_CODE["FS107"].recall(state) is None
    rule.forget(state)
    assert state.marks is None and state.settled


def test_a_mark_that_names_its_rule_is_held_alone_until_another_rule_marks_the_file():
    """FS101's window is the file's whole mark while it is its only one; another rule's mark
    beside it, and forgetting either, leave each rule recalling its own."""
    fs101, fs204 = RULES_BY_CODE["FS101"], RULES_BY_CODE["FS204"]
    state = FileState("/srv/f", False, True)
    window = Window(state, None, None, None, "p (pid 1)", 0, "/srv", 0)
    fs101.remember(state, window)
    assert state.marks is window and fs101.recall(state) is window and fs204.recall(state) is None
    fs204.remember(state, "lost")
    assert fs101.recall(state) is window and fs204.recall(state) == "lost"
    fs101.forget(state)
    assert fs101.recall(state) is None and fs204.recall(state) == "lost"
    fs101.remember(state, window)
    fs204.forget(state)
    assert fs101.recall(state) is window and fs204.recall(state) is None
    fs101.forget(state)
    assert state.marks is None and state.settled


def test_a_kept_event_reads_as_the_event_and_is_one_call_however_often_kept():
    """Calls replace the event dicts the model keeps: every key as it came (flags as a
    tuple), absent keys absent, and one Call for one event (evidence lists and
    published_dirty tell events apart by identity)."""
    event = {"t": 1.25, "pid": 70001, "tid": 70002, "syscall": "openat", "path": "/d/f",
             "flags": ["O_WRONLY", "O_CREAT"], "t_first": 1.25, "stack": [{"function": "main"}]}
    call = kept(event)
    assert isinstance(call, Call) and isinstance(call, Mapping) and call == {**event, "flags": ("O_WRONLY", "O_CREAT")}
    assert dict(call) == {**event, "flags": ("O_WRONLY", "O_CREAT")} and call != {**event, "ret": 0}
    assert kept(event) is call and kept(call) is call and kept(None) is None
    assert "stack" in call and "ret" not in call and call.get("ret", 0) == 0
    with pytest.raises(KeyError):
        call["ret"]
    assert kept(dict(event)) is not call


def test_an_o_direct_write_is_one_piece_of_evidence_though_kept_twice():
    """The write is both odirect_event and dirty_last: one Call, so FS302 lists it once."""
    engine = Engine()
    engine.feed({"t": 1.0, "pid": 1, "tid": 1, "syscall": "openat", "path": "/d/f", "kind": "file",
                 "flags": ["O_WRONLY", "O_CREAT", "O_DIRECT"], "fd": 3, "ret": 3})
    engine.feed({"t": 2.0, "pid": 1, "tid": 1, "syscall": "write", "path": "/d/f", "kind": "file", "fd": 3,
                 "o_direct": True, "ret": 4096, "bytes": 4096})
    state = engine.files["/d/f"]
    assert state.odirect_event is state.dirty_last is state.dirty_first


def _waking_story() -> Stream:
    """What wakes each rule's idle hooks (Rule.idle_syscalls), and the calls those hooks
    are for after it: a reply sent while data was dirty, then a barrier, another reply and
    the connection closed (FS106; first, the only file dirty at the sends: the order of
    several is that of a set of states); a failed fsync, then a write and the retry
    (FS202, FS201); a short write then fsync (FS203); an existing file truncated then
    written (FS107); dirty data renamed into place then synced with its directory (FS101's
    window); sync_file_range then a rename (FS301)."""
    s = Stream()
    fd = s.open(D + "/queue", "O_WRONLY", "O_APPEND")
    s.write(fd, D + "/queue")
    s.ev("sendto", ret=2, fd=9, kind="socket")
    s.fsync(fd, D + "/queue")
    s.write(fd, D + "/queue")
    s.ev("sendto", ret=2, fd=9, kind="socket")
    s.ev("close", fd=9, kind="socket")
    fd = s.open(D + "/failed")
    s.write(fd, D + "/failed")
    s.fsync(fd, D + "/failed", ret="EIO")
    s.write(fd, D + "/failed")
    s.fsync(fd, D + "/failed")
    fd = s.open(D + "/short")
    s.ev("write", ret=10, fd=fd, path=D + "/short", kind="file", count=100, calls=1, bytes=10, size_max=10)
    s.fsync(fd, D + "/short")
    fd = s.open(D + "/config", "O_WRONLY", "O_TRUNC", size_before=1200)
    s.write(fd, D + "/config", 10)
    s.save(D + "/published", fsync=False, dir_sync=False)
    fd = s.open(D + "/published", "O_RDONLY")
    s.fsync(fd, D + "/published")
    s.sync_dir()
    fd = s.open(D + "/ranged")
    s.write(fd, D + "/ranged")
    s.ev("sync_file_range", fd=fd, path=D + "/ranged", kind="file", flags=["SYNC_FILE_RANGE_WRITE"])
    s.rename(D + "/ranged", D + "/ranged.done")
    s.exit(0)
    return s


def test_idle_hooks_left_out_until_woken_change_no_finding():
    """A rule's idle hooks are called only once it is woken; an engine with every rule
    awake from the start, every hook called on every event, finds the same."""
    events = _waking_story().events
    default = analyse(copy.deepcopy(events))
    awake = Engine()
    for rule in awake.rules:
        awake.wake(rule.code)
    for event in copy.deepcopy(events):
        awake.feed(event)
    awake.finish()
    assert set(codes(default)) >= {"FS101", "FS106", "FS107", "FS201", "FS202", "FS203", "FS301"}
    assert default.findings == awake.findings
    assert _report(default) == _report(awake)
    assert Engine()._dispatch["fsync"][0] == ()     # FS101, FS106, FS201 and FS203: idle


def test_fs106_findings_follow_the_order_of_the_writes():
    # The engine indexes a process's dirty files in an ordered dict, not a set: a set's
    # order is the states' addresses, and the findings' order and evidence moved from run
    # to run of the same events.
    s = Stream()
    paths = [f"{D}/part{i:02}" for i in range(40)]
    fds = [s.open(path, "O_WRONLY", "O_APPEND") for path in paths]
    for fd, path in zip(fds, paths):
        s.write(fd, path)
    s.ev("sendto", ret=2, fd=99, kind="socket")
    for fd, path in zip(fds, paths):
        s.fsync(fd, path)
    found = [f.path for f in analyse(s.events).findings if f.rule == "FS106"]
    assert found == paths
