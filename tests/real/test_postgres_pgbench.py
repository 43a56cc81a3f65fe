"""PostgreSQL 15 (Debian) under pgbench: initdb, start, `pgbench -i -s 1`, 4 clients x 250 transactions, stop.

scenarios/postgres_pgbench.sh runs each step as the postgres user through
runuser, as scenarios/postgres_session.sh does (unix socket in the work
directory only); the run is `pgbench -c 4 -j 2 -t 250` (a fixed number of
transactions per client, not -T: the same work every time). Issue #15 saw
FS106 fire about 60,000 times on pg_wal/* when attached to a server under
this load. This case traces the whole session with `fsaudit run` (the
framework runs commands, not attach); the backends, the WAL writer and the
checkpointer are all in the traced tree either way.

Ground truth
------------

`strace -f -y` of the run (W is the work directory). A TPC-B transaction is
BEGIN, three UPDATEs, a SELECT and an INSERT, END, each a round trip; the
commit is a write-ahead log flush before the reply (backend 10508):

    10508 recvfrom(6<socket:[1205044]>, "Q\\0\\0\\0\\tEND;\\0", 8192, 0, NULL, NULL) = 10
    10508 pwrite64(24<W/data/pg_wal/000000010000000000000002>, ..., 8192, ...) = 8192
    10508 fdatasync(24<W/data/pg_wal/000000010000000000000002>) = 0
    10508 sendto(6<socket:[1205044]>, "C\\0\\0\\0\\vCOMMIT\\0Z\\0\\0\\0\\5I", 18, 0, NULL, 0) = 18

Under load the flush is shared (group commit): a backend that finds its
commit record already flushed by another replies without a sync of its own,
and a WAL page one backend wrote is made durable by another's fdatasync
(XLogFlush() in src/backend/access/transam/xlog.c: "... we might as well
write/flush everything that's been inserted"; docs: commit_delay, "allowing a
larger number of transactions to commit via a single WAL flush",
https://www.postgresql.org/docs/15/runtime-config-wal.html); the WAL writer
flushes in the background too. In one traced run, the backend loading
pgbench_accounts (below) wrote WAL pages itself from t=4.2477 s (full WAL
buffers, AdvanceXLInsertBuffer(): written, not flushed), the WAL writer's
fdatasync of the same segment ran from 4.3617 to 4.3759 s, and the backend
replied at 4.3990 s with no barrier of its own: its WAL was durable, by
another process's barrier (rules.md FS106: a barrier covers every write
completed before it began, whoever made it). FS106 on pg_wal/* is FALSE.

The backends also write relation files themselves, mid-transaction: a
relation extension writes a zeroed page (mdextend() in
src/backend/storage/smgr/md.c), and the reply to the statement follows
(backend 10507):

    10507 recvfrom(6<socket:[1205043]>, "Q\\0\\0\\0NUPDATE pgbench_accounts SET"..., 8192, 0, NULL, NULL) = 79
    10507 pwrite64(9<W/data/base/5/16396>, "\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0"..., 8192, 13434880) = 8192
    10507 sendto(6<socket:[1205043]>, "C\\0\\0\\0\\rUPDATE 1\\0Z\\0\\0\\0\\5T", 20, 0, NULL, 0) = 20
    ... SELECT, UPDATE, UPDATE, INSERT, then END: pwrite64 and fdatasync of pg_wal, "COMMIT"

and `pgbench -i` loads pgbench_accounts with COPY inside a transaction
(BEGIN, TRUNCATE, COPY ... FREEZE, COMMIT, src/bin/pgbench/pgbench.c
initGenerateDataClientSide()): the backend writes the heap pages through its
bulk-write ring, after the WAL writer has flushed the WAL that covers them,
then replies "COPY 100000" with no barrier of its own, then fdatasyncs the WAL
at COMMIT and replies (backend 10326):

    10326 sendto(6<socket:[1204892]>, "C\\0\\0\\0\\20COPY 100000\\0Z\\0\\0\\0\\5T", 23, 0, NULL, 0) = 23
    10326 recvfrom(6<socket:[1204892]>, "Q\\0\\0\\0\\vcommit\\0", 8192, 0, NULL, NULL) = 12
    10326 fdatasync(47<W/data/pg_wal/000000010000000000000001>) = 0
    10326 sendto(6<socket:[1204892]>, "C\\0\\0\\0\\vCOMMIT\\0Z\\0\\0\\0\\5I", 18, 0, NULL, 0) = 18

A statement's reply inside a transaction acknowledges nothing durable; the
commit's reply comes after the WAL that covers the pages is durable ("changes
to data files must be written only after those changes have been logged",
https://www.postgresql.org/docs/15/wal-intro.html). FS106 on base/* is FALSE,
as in the postgres-session case. What tells the two apart in the trace is
what follows on the connection: the backend's next reply after a barrier of
its own finds nothing of it dirty (its WAL fdatasync covered the page writes:
that reply is the commit's), so the replies before it were statements of the
transaction. FS106 judges a reply by that next reply (its page, "A reply
inside a transaction"); before it did, it fired here 13 times on 6 files (a
strict xfail until then). In these runs every backend fdatasyncs the WAL at
each of its commits (250 fdatasyncs for 250 commits per client, counted in
the trace): a commit flushed by another backend's fdatasync while a page of
its own is still dirty would leave its statements' replies undecided until
its next commit of its own.

TRUNCATE gives each table a new relation file; the old one is truncated to 0
by the backend at commit and unlinked by the checkpointer after the next
checkpoint (mdunlinkfork() in md.c: "we don't remove the first segment file
... we truncate it to zero length and register a request to unlink it after
the next checkpoint", so that the relfilenode is not reused meanwhile; a
file left behind by a crash is an empty orphan, never read):

    10318 openat(AT_FDCWD<W/data>, "base/5/16384", O_RDWR) = 53<W/data/base/5/16384>
    10318 fsync(53<W/data/base/5/16384>) = 0
    10318 unlink("base/5/16384") = 0

Removing an obsolete, empty file publishes no state: FS104 on base/5 is FALSE.
(fsaudit fired it, one warning for the 4 removals: the file was fsynced
before its removal, as a synced rollback journal is. FS104 now leaves out a
file the tree emptied and has not written since.)

The rest is as in the postgres-session case (test_postgres.py), each seen
here too: initdb's batch (FS101 at most info), FS103 TRUE on `data`
(initdb never syncs its parent) and on every relation file pgbench -i
creates, its free space map and visibility map forks included (mdcreate(),
fsynced by the checkpointer, base/5 never fsynced), FS105 NOISE on
pg_subtrans, postmaster.opts and server.log, FS107 FALSE on
postgresql.conf, and FS106 FALSE for runuser and the clients (pgbench, pg_ctl).

A second case, postgres-pgbench-clients, runs only the clients (start, 4 x
250 transactions, stop) on a database the same script prepared untraced
(initdb, pgbench -i): the group-commit case on its own. FS106 on pg_wal is
FALSE and asserted absent there without a defect mark. FS106 on base/* is
FALSE there too (a backend writes a heap page and replies to an UPDATE between
BEGIN and END; its COMMIT follows its WAL fdatasync). postmaster.opts,
which existed from the preparation, is rewritten with O_TRUNC at start:
FS107 on it is NOISE (what pg_ctl restart reuses, rewritten at every start).
"""

from __future__ import annotations

import subprocess

from .realcase import FALSE, NOISE, SCENARIOS, TRUE, Case, Truth, parametrize
from .test_postgres import BIN, INITDB_BATCH, INITDB_FILES, SERVER_FILES, stop_server

TRANSACTIONS_PER_CLIENT = 250

CASES = [
    Case("postgres-pgbench", "PostgreSQL: initdb, start, pgbench -i -s 1, 4 clients x 250 transactions, stop",
         ("runuser", f"{BIN}/initdb", f"{BIN}/pg_ctl", f"{BIN}/pgbench"),
         lambda work: [str(SCENARIOS / "postgres_pgbench.sh"), BIN, str(work), str(TRANSACTIONS_PER_CLIENT)], [
             Truth("FS106", "*", FALSE, "runuser's sends are PAM audit records on a NETLINK_AUDIT socket",
                   by="runuser"),
             Truth("FS106", "*", FALSE, "a client's request acknowledges nothing the server wrote",
                   by="pgbench|pg_ctl|postgres_pgbench.sh"),
             Truth("FS106", "data/*", FALSE, "a statement's reply inside a transaction acknowledges nothing "
                   "(pgbench -i's COPY: base/* in every run, pg_wal/* in some); the commit's reply follows the "
                   "WAL fdatasync that covers the pages"),
             Truth("FS104", "data/base/*", FALSE, "the checkpointer removes an obsolete relation file, truncated "
                   "to 0 at commit: an empty orphan after a crash, never read"),
             *INITDB_BATCH, *SERVER_FILES, *INITDB_FILES,
             Truth("FS103", "data/base/*/[0-9]*", TRUE, "mdcreate() never syncs the relation's directory "
                   "(pgbench -i's tables, their _fsm and _vm forks, its indexes)", by="postgres"),
         ],
         teardown=stop_server, owner="postgres"),
    # The clients alone, on a database pgbench -i prepared untraced: the group-commit case,
    # with no statement inside a transaction that writes (scale 1 fits shared_buffers, and
    # WAL is written at commit).
    Case("postgres-pgbench-clients", "PostgreSQL: start, 4 pgbench clients x 250 transactions, stop",
         ("runuser", f"{BIN}/pg_ctl", f"{BIN}/pgbench"),
         lambda work: [str(SCENARIOS / "postgres_pgbench.sh"), BIN, str(work), str(TRANSACTIONS_PER_CLIENT),
                       "run"], [
             Truth("FS106", "*", FALSE, "runuser's sends are PAM audit records on a NETLINK_AUDIT socket",
                   by="runuser"),
             Truth("FS106", "*", FALSE, "a client's request acknowledges nothing the server wrote",
                   by="pgbench|pg_ctl|postgres_pgbench.sh"),
             Truth("FS106", "data/pg_wal/*", FALSE, "group commit: a WAL write is covered by whichever "
                   "backend's fdatasync began after it, and each commit's reply follows the flush"),
             Truth("FS106", "data/base/*", FALSE, "a statement's reply inside a transaction (pgbench's UPDATEs "
                   "between BEGIN and END) acknowledges nothing; the commit's reply follows the WAL fdatasync"),
             Truth("FS10[1-6]", "data/pg_stat/*", NOISE, "statistics are reset after a crash: a cache"),
             Truth("FS10[1-6]", "data/*pg_internal.init*", NOISE, "relcache init file, rebuilt when missing"),
             Truth("FS105", "data/pg_subtrans/*", NOISE, "pg_subtrans is zeroed at startup"),
             Truth("FS10[457]", "data/postmaster.*", NOISE, "the pid lock file and the informational options file "
                   "(postmaster.opts, rewritten with O_TRUNC at each start: what pg_ctl restart reuses)"),
             Truth("FS10[45]", "server.log", NOISE, "the server's log"),
             Truth("FS104", ".s.PGSQL.5432", FALSE, "a unix socket's name is not a file"),
             Truth("FS104", ".s.PGSQL.5432.lock", NOISE, "the socket's lock file"),
             Truth("FS103", "data/base/*/[0-9]*", TRUE, "mdcreate() never syncs the relation's directory (a fork "
                   "such as _fsm made while the clients run, when a table first needs it: not in every run)",
                   by="postgres", expect=None),
         ],
         setup=lambda work: subprocess.run(
             [str(SCENARIOS / "postgres_pgbench.sh"), BIN, str(work), "0", "prepare"], check=True),
         teardown=stop_server, owner="postgres"),
]


@parametrize(CASES)
def test_ground_truth(traced, case, check):
    check.run(traced(case))
