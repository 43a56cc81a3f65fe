"""Two ways to save a file: the common one, which a crash can leave empty, and the durable one."""

import os


def save_naive(path, data):
    """Write a temporary file and rename it over path: atomic, not durable."""
    with open(path + ".tmp", "w") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def save_durable(path, data):
    """The same, with the data fsynced before the rename and the directory after it."""
    with open(path + ".tmp", "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
