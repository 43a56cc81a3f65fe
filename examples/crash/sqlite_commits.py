"""Three committed SQLite transactions, each acknowledged on stdout once
COMMIT has returned. Usage: sqlite_commits.py JOURNAL_MODE SYNCHRONOUS, in
the directory that holds app.db (make_database below creates it).

WAL runs with locking_mode=EXCLUSIVE: its wal-index then lives in the heap
instead of a MAP_SHARED app.db-shm, whose writes fsaudit crash cannot record
(it refuses such a workload)."""

import sqlite3
import sys


def make_database(path: str) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t(n INTEGER)")
    db.commit()
    db.close()


def main() -> None:
    mode, synchronous = sys.argv[1], sys.argv[2]
    db = sqlite3.connect("app.db", isolation_level=None)
    if mode.upper() == "WAL":
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
    db.execute(f"PRAGMA journal_mode={mode}")
    db.execute(f"PRAGMA synchronous={synchronous}")
    for n in (1, 2, 3):
        db.execute("BEGIN")
        db.execute("INSERT INTO t VALUES (?)", (n,))
        db.execute("COMMIT")
        print(f"committed {n}", flush=True)
    db.close()


if __name__ == "__main__":
    main()
