"""The naive save of examples/python/naive.py, then "saved" on stdout: the
acknowledgement a user or a client would act on. Run in the directory to save in."""

import os

LINES = 500

with open("record.txt.tmp", "w") as f:
    for i in range(LINES):
        f.write(f"line {i:04d}: the quick brown fox jumps over the lazy dog\n")
os.replace("record.txt.tmp", "record.txt")
print("saved", flush=True)
