"""Python's sqlite3 module: open DB (made by another process), two autocommit INSERTs."""

import sqlite3
import sys

connection = sqlite3.connect(sys.argv[1], isolation_level=None)   # autocommit: one transaction per statement
connection.execute("PRAGMA journal_mode=DELETE")
for value in (1, 2):
    connection.execute("INSERT INTO t VALUES (?)", (value,))
connection.close()
