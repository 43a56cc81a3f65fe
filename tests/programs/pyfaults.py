"""How a Python program copes with an injected fsync failure (os.fsync raises OSError)."""
import os
import sys

mode = sys.argv[1]
with open("data.txt", "w") as f:
    f.write("record 1\n")
    f.flush()
    if mode == "retry":
        while True:
            try:
                os.fsync(f.fileno())
                break
            except OSError as exc:
                print("fsync failed, retrying:", exc, file=sys.stderr)
    elif mode == "swallow":
        try:
            os.fsync(f.fileno())
        except OSError:
            pass
        f.write("record 2\n")
    elif mode == "raise":
        os.fsync(f.fileno())      # the OSError ends the program with status 1
