"""CPython saves for tests/test_rules_live.py: python pysave.py MODE (in the directory to write).

buggy:   os.fsync() before f.flush(): the data is still in the io buffer, so it reaches
         write() only after the fsync and is renamed over the target unsynced.
correct: f.flush(), os.fsync(), os.replace(), then fsync the directory.
Only modules CPython has already compiled are imported, so the interpreter itself
writes no .pyc files in scope.
"""

import os
import sys

DATA = b"x" * 1000


def save(name: str, flush_first: bool) -> None:
    tmp = name + ".tmp"
    with open(tmp, "wb") as f:          # buffered: 1000 bytes stay in the BufferedWriter
        f.write(DATA)
        if flush_first:
            f.flush()
            os.fsync(f.fileno())
        else:
            os.fsync(f.fileno())        # syncs nothing: the bytes are not in the kernel yet
            f.flush()
    os.replace(tmp, name)
    fd = os.open(".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode not in ("buggy", "correct"):
        sys.exit(f"unknown mode {mode}")
    save("state.json", flush_first=mode == "correct")
