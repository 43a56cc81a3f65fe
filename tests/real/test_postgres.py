"""PostgreSQL 15 (Debian): initdb, start, CREATE TABLE and three autocommit INSERTs through psql, stop.

scenarios/postgres_session.sh runs each step as the postgres user through
runuser, as an administrator would; the server listens on a unix socket in
the work directory only.

Ground truth
------------

Commit: a write-ahead log. `strace -f -y` of one `INSERT` (backend 28602, its
psql 28601; W is the work directory):

    28602 pwrite64(13<W/data/base/5/16384>, ..., 8192, 0) = 8192         <- heap page (relation extension)
    28602 pwrite64(14<W/data/pg_wal/000000010000000000000001>, ..., 8192, ...) = 8192
    28602 fdatasync(14<W/data/pg_wal/000000010000000000000001>) = 0     <- the commit record is durable
    28602 sendto(6<socket:[...]>, "C\\0\\0\\0\\17INSERT 0 1\\0Z...", 22, 0, NULL, 0) = 22   <- the reply
    28601 sendto(3<socket:[...]>, "X\\0\\0\\0\\4", 5, MSG_NOSIGNAL, NULL, 0) = 5     <- psql says goodbye
    28599 sendto(3<socket:[...]>, [{nlmsg_len=160, nlmsg_type=0x452 ...   <- runuser's PAM audit record (netlink)

The data page is protected by the WAL record fdatasync'ed before the reply
(docs: "WAL's central concept is that changes to data files must be written
only after those changes have been logged, that is, after WAL records
describing the changes have been flushed to permanent storage",
https://www.postgresql.org/docs/15/wal-intro.html). FS106 on a relation
file (base/5/16384) or pg_wal/* is FALSE; so is any FS106 whose sender is a client (psql, the perl
pg_wrapper that execs it, pg_ctl) or runuser, whose only sends are requests
and netlink audit records, or whose file is a log, the statistics file or
postmaster.opts, which no reply acknowledges.

initdb is a batch: the bootstrap and single-user backends run with fsync off
(`postgres --boot -F`, `--single -F`) and rename unsynced files
(pg_wal/xlogtemp.N -> 000000010000000000000001,
pg_logical/replorigin_checkpoint.tmp, pg_stat/pgstat.tmp), then initdb itself
syncs the whole tree before it exits 0 ("syncing data to disk ... ok"):
sync_file_range over every file, then fsync of every file and directory
(fsync W/data/pg_wal/000000010000000000000001, fsync W/data/pg_wal, ...,
fsync W/data). FS101 on those is at most info (rules.md: a batch that syncs
everything at its end). Each bootstrap checkpoint renames a new
replorigin_checkpoint.tmp over the last one, unsynced: the name's content at the
final sync is the last one's, so the earlier publications close with it. initdb creates postgresql.conf empty to probe
settings and rewrites it 1.5 s later:

    openat(AT_FDCWD, "W/data/postgresql.conf", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3   (no write)
    ...
    openat(AT_FDCWD, "W/data/postgresql.conf", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
    write(3<W/data/postgresql.conf>, "# -----------------------------\\n# Postgr"..., 4096) = 4096

so FS107 on it ("truncated an existing file") is FALSE: the file was empty.

What is TRUE:
- initdb's final sync fsyncs W/data but never W, the directory it created
  W/data in (mkdir("W/data", 0700)): after "Success", a crash can lose the
  whole cluster. FS103 on data.
- A new relation file (CREATE TABLE: base/5/16384, opened O_CREAT|O_EXCL by
  mdcreate() in src/backend/storage/smgr/md.c) is fsynced by the checkpointer
  (register_dirty_segment, then `fsync(25<W/data/base/5/16384>)` at the
  shutdown checkpoint) but base/5 is never fsynced. The creation's WAL record
  covers a crash before the next checkpoint; after it, the entry may be lost.
  FS103 on base/5/16384. (PostgreSQL relies on journaling filesystems here.)

NOISE:
- pg_internal.init (the relation cache init file, "used to speed up backend
  startup", RELCACHE_INIT_FILENAME in src/include/utils/relcache.h: written to
  a temp file and renamed without fsync; an invalid or missing one is rebuilt,
  write_relcache_init_file() in src/backend/utils/cache/relcache.c).
- pg_stat/ (statistics: "When recovery is performed at server start (e.g.,
  after immediate shutdown, server crash ...), all statistics counters are
  reset", https://www.postgresql.org/docs/15/monitoring-stats.html).
  Both are caches by role (fsaudit.analysis.roles), out of scope by default.
- pg_subtrans/ (subtransaction parents, zeroed at startup, never needed
  after a crash, src/backend/access/transam/subtrans.c).
- postmaster.opts (informational), postmaster.pid and .s.PGSQL.5432.lock
  (locks: removing one publishes no state, so no FS104), server.log (a log).

FALSE: FS104 on the unix socket .s.PGSQL.5432 (`unlink("W/.s.PGSQL.5432")` at
shutdown: a socket's name is never a file, rules.md "scope").
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from .realcase import FALSE, NOISE, SCENARIOS, TRUE, Case, Truth, parametrize, stop_pidfile


def _bindir() -> str:
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    return max(versions, key=lambda d: [int(n) for n in re.findall(r"\d+", d)]) if versions else "/usr/lib/postgresql/15/bin"


BIN = _bindir()


def stop_server(work: Path) -> None:
    stop_pidfile(work / "data" / "postmaster.pid", f"{BIN}/postgres")


# What every PostgreSQL case shares (the pgbench cases too): initdb's fsync=off batch,
# the server's caches, logs, pid file and socket, and initdb's own files.
INITDB_BATCH = [
    Truth("FS101", "data/pg_wal/*", FALSE, "fsync=off bootstrap, then initdb syncs every file and directory",
          only_at=("error", "warning"), expect="info"),
    Truth("FS101", "data/pg_wal/*", NOISE, "the same, at info (a batch that syncs at its end)"),
    Truth("FS101", "data/pg_logical/*", FALSE, "fsync=off bootstrap, then initdb syncs every file and "
          "directory (each checkpoint's file replaced by the next); the server's checkpointer uses "
          "durable_rename()", only_at=("error", "warning"), expect="info"),
    Truth("FS101", "data/pg_logical/*", NOISE, "the same, at info"),
]
SERVER_FILES = [
    Truth("FS10[1-6]", "data/pg_stat/*", NOISE, "statistics are reset after a crash (monitoring-stats): "
          "a cache, out of scope by default", expect="info"),
    Truth("FS10[1-6]", "data/*pg_internal.init*", NOISE, "relcache init file, rebuilt when missing: a cache, "
          "out of scope by default", expect="info"),
    Truth("FS105", "data/pg_subtrans/*", NOISE, "pg_subtrans is zeroed at startup"),
    Truth("FS10[45]", "data/postmaster.*", NOISE, "the pid lock file and the informational options file"),
    Truth("FS10[45]", "server.log", NOISE, "the server's log"),
    Truth("FS104", ".s.PGSQL.5432", FALSE, "a unix socket's name is not a file"),
    Truth("FS104", ".s.PGSQL.5432.lock", NOISE, "the socket's lock file (removing a lock publishes "
          "nothing: no FS104)"),
]
INITDB_FILES = [
    Truth("FS107", "data/postgresql.conf", FALSE, "initdb created it empty, then wrote it once",
          by="initdb"),
    Truth("FS103", "data", TRUE, "initdb syncs the data directory but never its parent", by="initdb"),
]

CASES = [
    Case("postgres-session", "PostgreSQL: initdb, start, 4 autocommit statements via psql, stop",
         ("runuser", "psql", f"{BIN}/initdb", f"{BIN}/pg_ctl"),
         lambda work: [str(SCENARIOS / "postgres_session.sh"), BIN, str(work)], [
             Truth("FS106", "*", FALSE, "runuser's sends are PAM audit records on a NETLINK_AUDIT socket",
                   by="runuser"),
             Truth("FS106", "*", FALSE, "a client's request acknowledges nothing the server wrote",
                   by="psql|perl|pg_ctl|postgres_session.sh"),
             Truth("FS106", "data/base/*/[0-9]*", FALSE, "the backend fdatasyncs the WAL between the page write and "
                   "the reply"),
             Truth("FS106", "data/pg_wal/*", FALSE, "the WAL is fdatasync'ed before each reply (group commit)"),
             *INITDB_BATCH,
             *SERVER_FILES,
             *INITDB_FILES,
             Truth("FS103", "data/base/*/16384", TRUE, "mdcreate() never syncs the relation's directory",
                   by="postgres"),
         ],
         teardown=stop_server, owner="postgres"),
]


@parametrize(CASES)
def test_ground_truth(traced, case, check):
    check.run(traced(case))
