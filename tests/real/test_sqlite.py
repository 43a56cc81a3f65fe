"""SQLite 3.40 (Debian's sqlite3 CLI and libsqlite3 through Python's sqlite3 module).

Ground truth
------------

Rollback journal (journal_mode=DELETE). Each autocommit statement is one
transaction; `strace -f -y` of the CLI with synchronous=FULL shows, per
transaction (W is the work directory):

    openat(AT_FDCWD, "W/t.db-journal", O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC, 0644) = 4
    pwrite64(4<W/t.db-journal>, ..., 512, 0) = 512
    fdatasync(4<W/t.db-journal>) = 0
    openat(AT_FDCWD, "W", O_RDONLY|O_CLOEXEC) = 5        <- the new journal's directory entry
    fdatasync(5<W>) = 0
    pwrite64(4<W/t.db-journal>, ..., 12, 0) = 12          <- journal header: page count
    fdatasync(4<W/t.db-journal>) = 0
    pwrite64(3<W/t.db>, ..., 4096, 0) = 4096              <- the database pages
    fdatasync(3<W/t.db>) = 0
    close(4<W/t.db-journal>) = 0
    unlink("W/t.db-journal") = 0                          <- the commit point; nothing follows

The unlink is the commit (a "hot" journal left behind is rolled back on the
next open: https://www.sqlite.org/atomiccommit.html, "Deleting The Rollback
Journal"). With synchronous=FULL no directory sync follows it, so a power
loss just after the commit can bring the journal back and roll the committed
transaction back. SQLite documents exactly this: "EXTRA synchronous is like
FULL with the addition that the directory containing a rollback journal is
synced after that journal is unlinked to commit a transaction in DELETE
mode. EXTRA provides additional durability if the commit is followed closely
by a power loss." (https://www.sqlite.org/pragma.html#pragma_synchronous).
In the source, pager_end_transaction() calls
`sqlite3OsDelete(pPager->pVfs, pPager->zJournal, pPager->extraSync)` and
unixDelete()'s last argument is "If true, fsync() directory after deleting
file" (src/pager.c, src/os_unix.c). With EXTRA the trace ends:

    unlink("W/t.db-journal") = 0
    openat(AT_FDCWD, "W", O_RDONLY|O_CLOEXEC) = 4
    fdatasync(4<W>) = 0

So: FS104 on t.db-journal is TRUE with FULL (the developer's fix is
synchronous=EXTRA, or journal_mode=WAL) and FALSE with EXTRA. Only the last
transaction's unlink is pending: each later journal creation syncs the
directory again. A deletion-is-not-a-commit rule that treats the journal as
a temp file (created and removed during observation) would lose this true
finding: the journal was itself synced, and its removal changes what
recovery does (rules.md, FS104).

Everything else is synced: the database and journal data (fdatasync) and
both creations (the directory fdatasync after the journal's creation comes
after the database's too). FS103/FS105 on t.db or t.db-journal are FALSE.

WAL (journal_mode=WAL, synchronous=FULL). Each commit appends frames to
t.db-wal and fdatasyncs it; the WAL's creation is followed by a directory
fdatasync. At close the last connection checkpoints (frames copied to t.db,
fdatasync), then unlinks t.db-shm and t.db-wal with no directory sync:

    fdatasync(3<W/t.db>) = 0
    unlink("W/t.db-shm") = 0
    close(4<W/t.db-wal>) = 0
    unlink("W/t.db-wal") = 0

That is deliberate: sqlite3WalClose() "checkpoint[s] the database and
unlink[s] both the wal and wal-index files" with
`sqlite3OsDelete(pWal->pVfs, pWal->zWalName, 0)` (dirSync 0, src/wal.c). A
WAL that reappears after a crash holds only frames already in the database,
and the -shm index is rebuilt from the WAL. FS104 on them is NOISE. One
finding, "removed t.db-shm and t.db-wal (2 removals)", stands for both: its
path is the directory, and it is judged by the files it names.

Python's sqlite3 module, a second process: `sh -c` runs the CLI to create
the database, then Python opens it (O_RDWR|O_CREAT on an existing file: not
a create) and inserts two rows in autocommit. The same journal protocol;
the last FS104 is the Python process's and is TRUE. FS103 on t.db blamed on
python3 would be FALSE twice over: the CLI created it, and synced the
directory after it did.
"""

from __future__ import annotations

from .realcase import FALSE, NOISE, SCENARIOS, TRUE, Case, Truth, parametrize

SCHEMA = "CREATE TABLE t(x); INSERT INTO t VALUES(1); INSERT INTO t VALUES(2);"


def cli(pragmas: str):
    return lambda work: ["sqlite3", "t.db", pragmas + SCHEMA]


JOURNAL_SYNCED = [
    Truth("FS103", "t.db", FALSE, "the directory is fdatasync'ed after the journal's creation, later than the db's"),
    Truth("FS103", "t.db-journal", FALSE, "directory fdatasync'ed right after the journal's first fdatasync"),
    Truth("FS105", "t.db*", FALSE, "every write to the database and the journal is fdatasync'ed"),
    Truth("FS101", "*", FALSE, "SQLite renames nothing"),
    Truth("FS107", "*", FALSE, "no O_TRUNC open, no ftruncate to 0 of a file with data"),
]

CASES = [
    Case("sqlite-cli-delete-full", "sqlite3 CLI, DELETE journal, synchronous=FULL", ("sqlite3",),
         cli("PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; "), [
             Truth("FS104", "t.db-journal", TRUE, "the commit's unlink is never followed by a directory sync "
                   "(pragma.html: only EXTRA syncs it)", by="sqlite3"),
             *JOURNAL_SYNCED,
         ]),
    Case("sqlite-cli-delete-extra", "sqlite3 CLI, DELETE journal, synchronous=EXTRA", ("sqlite3",),
         cli("PRAGMA journal_mode=DELETE; PRAGMA synchronous=EXTRA; "), [
             Truth("FS104", "t.db-journal", FALSE, "EXTRA fdatasyncs the directory after each journal unlink"),
             *JOURNAL_SYNCED,
         ]),
    Case("sqlite-cli-wal", "sqlite3 CLI, WAL, synchronous=FULL", ("sqlite3",),
         cli("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "), [
             Truth("FS104", "t.db-wal", NOISE, "removed after a complete checkpoint, dirSync 0 on purpose (wal.c)"),
             Truth("FS104", "t.db-shm", NOISE, "the wal-index, rebuilt from the WAL; removed at close"),
             # Switching to WAL writes the database header in one rollback-journal transaction.
             Truth("FS104", "t.db-journal", FALSE, "later directory fdatasyncs (the WAL's creation) cover it"),
             Truth("FS103", "t.db*", FALSE, "each creation is followed by a directory fdatasync"),
             Truth("FS105", "t.db*", FALSE, "the WAL and the database are fdatasync'ed; -shm is removed"),
         ]),
    Case("sqlite-python-second-process", "Python sqlite3 module on a database the CLI made", ("sqlite3", "sh", "python3"),
         lambda work: ["sh", "-c", "sqlite3 t.db 'PRAGMA journal_mode=DELETE; CREATE TABLE t(x)' >/dev/null; "
                       f"exec python3 -I {SCENARIOS / 'sqlite_insert.py'} t.db"], [
             Truth("FS104", "t.db-journal", TRUE, "Python's last commit unlinks the journal, no directory sync",
                   by="python3"),
             Truth("FS10[1-5]", "*/__pycache__/*", NOISE, "byte-code Python may write for the modules it imports"),
             *JOURNAL_SYNCED,
         ]),
]


@parametrize(CASES)
def test_ground_truth(traced, case, check):
    check.run(traced(case))
