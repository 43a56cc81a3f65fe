"""Checker for sqlite_commits.py: open the database as the application would
after a power cut (SQLite rolls a hot journal back, replays a WAL) and count
the rows: every acknowledged commit must be there.

Usage (by fsaudit crash): check_sqlite.py STATE_DIR ACKED_FILE."""

import os
import re
import sqlite3
import sys


def main() -> int:
    state, acked_file = sys.argv[1], sys.argv[2]
    acked = [int(n) for n in re.findall(r"committed (\d+)", open(acked_file).read())]
    try:
        db = sqlite3.connect(os.path.join(state, "app.db"))
        rows = db.execute("SELECT count(*) FROM t").fetchone()[0]
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        print(f"the database does not open: {exc}")
        return 1
    if integrity != "ok":
        print(f"integrity_check: {integrity}")
        return 1
    if rows < max(acked, default=0):
        print(f"committed {max(acked)} was acknowledged, {rows} rows remain")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
