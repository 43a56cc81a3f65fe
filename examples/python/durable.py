"""Save a record durably: write a temp file, flush and fsync it, os.replace it
over the real one, then fsync the directory so the rename itself survives."""

import os

LINES = 500

with open("record.txt.tmp", "w") as f:
    for i in range(LINES):
        f.write(f"line {i:04d}: the quick brown fox jumps over the lazy dog\n")
    f.flush()                 # into the kernel: io's buffer is not on disk
    os.fsync(f.fileno())
os.replace("record.txt.tmp", "record.txt")
# CPython has no directory-sync helper: open the directory read-only and fsync it.
directory = os.open(".", os.O_RDONLY)
try:
    os.fsync(directory)
finally:
    os.close(directory)
