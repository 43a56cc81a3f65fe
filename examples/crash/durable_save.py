"""The durable save of examples/python/durable.py, then "saved" on stdout."""

import os

LINES = 500

with open("record.txt.tmp", "w") as f:
    for i in range(LINES):
        f.write(f"line {i:04d}: the quick brown fox jumps over the lazy dog\n")
    f.flush()
    os.fsync(f.fileno())
os.replace("record.txt.tmp", "record.txt")
directory = os.open(".", os.O_RDONLY)
try:
    os.fsync(directory)
finally:
    os.close(directory)
print("saved", flush=True)
