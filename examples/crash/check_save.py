"""Checker for the save examples: record.txt is always a whole record, the old
one or the new one, and the new one once "saved" was acknowledged.

Usage (by fsaudit crash): check_save.py STATE_DIR ACKED_FILE. The scope starts
with the old record (make_old_record below)."""

import os
import sys

NEW = "".join(f"line {i:04d}: the quick brown fox jumps over the lazy dog\n" for i in range(500))
OLD = "".join(f"old {i:04d}\n" for i in range(100))


def make_old_record(directory: str) -> None:
    with open(os.path.join(directory, "record.txt"), "w") as f:
        f.write(OLD)


def main() -> int:
    state, acked_file = sys.argv[1], sys.argv[2]
    acked = open(acked_file).read()
    try:
        record = open(os.path.join(state, "record.txt")).read()
    except FileNotFoundError:
        print("record.txt is gone")
        return 1
    if record not in (OLD, NEW):
        print(f"record.txt is neither record: {len(record)} bytes")
        return 1
    if "saved" in acked and record != NEW:
        print("\"saved\" was acknowledged but record.txt is the old record")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
