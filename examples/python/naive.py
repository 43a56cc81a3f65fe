"""Save a record "atomically" the naive way: write a temp file, os.replace it
over the real one. No fsync anywhere: after a power cut the record can be
empty or torn, and the rename itself may be lost."""

import os

LINES = 500

with open("record.txt.tmp", "w") as f:
    for i in range(LINES):
        f.write(f"line {i:04d}: the quick brown fox jumps over the lazy dog\n")
os.replace("record.txt.tmp", "record.txt")
