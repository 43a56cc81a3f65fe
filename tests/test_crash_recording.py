"""The crash recording on the real tracer: the bytes of every write placed where
the kernel put them (pwrite offsets, lseek, O_APPEND, writev), checked by
replaying them against the scope's real final contents; and the refusals."""

from __future__ import annotations

import subprocess
import sys

from conftest import FSAUDIT

PLACED = """
import os
fd = os.open("f", os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"a" * 10000)                 # three sectors, one call
os.pwrite(fd, b"P", 3)                     # at its offset, the position unmoved
os.write(fd, b"after")                     # at 10000
os.lseek(fd, 2, os.SEEK_SET)
os.write(fd, b"S")                         # at 2
os.writev(fd, [b"v1", b"v22", b"v333"])    # at 3
os.ftruncate(fd, 9000)
os.close(fd)
log = os.open("log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(log, b"one\\n")
os.lseek(log, 0, os.SEEK_SET)
os.write(log, b"two\\n")                   # O_APPEND: at the end whatever the position
os.close(log)
os.rename("log", "log.1")
os.mkdir("d")
os.link("f", "d/f")
os.unlink("f")
print("done", flush=True)
"""


def crash(tmp_path, program: str):
    scope = tmp_path / "scope"
    scope.mkdir(exist_ok=True)
    return subprocess.run(FSAUDIT + ["crash", "--max-states", "5", "--", sys.executable, "-c", program,
                                     "--check", "true"], cwd=scope, capture_output=True, text=True)


def test_every_write_is_placed_as_the_kernel_placed_it(bpf, tmp_path):
    proc = crash(tmp_path, PLACED)
    # The replay matched the real final contents, or crash would have refused (exit 3).
    assert proc.returncode == 0, proc.stderr
    assert "0 of 5 states checked failed" in proc.stdout
    assert (tmp_path / "scope" / "d" / "f").read_bytes()[:12] == b"aaSv1v22v333"


def test_a_write_larger_than_the_capture_bound_is_refused(bpf, tmp_path):
    proc = crash(tmp_path, "open('big', 'wb', buffering=0).write(b'x' * 200000)")
    assert proc.returncode == 3
    assert proc.stderr.strip() == ("fsaudit: cannot record the workload completely: the bytes of a write to "
                                   f"{tmp_path}/scope/big were not all captured")


def test_io_uring_is_refused(bpf, tmp_path):
    program = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n" \
              "params = ctypes.create_string_buffer(120)\nlibc.syscall(425, 4, params)\n"
    proc = crash(tmp_path, program)
    assert proc.returncode == 3 and "io_uring_setup" in proc.stderr


def test_a_read_that_moves_the_position_before_a_write_is_refused_and_named(bpf, tmp_path):
    """The probe reports no reads, so a write() after a read() on the same descriptor lands
    where the recording cannot know: the final comparison refuses, and says why."""
    (tmp_path / "scope").mkdir()
    (tmp_path / "scope" / "f").write_bytes(b"0123456789")
    proc = crash(tmp_path, "import os\nfd = os.open('f', os.O_RDWR)\nos.read(fd, 4)\nos.write(fd, b'XY')\n")
    assert proc.returncode == 3
    assert proc.stderr.strip() == (
        f"fsaudit: cannot record the workload completely: replaying the recording does not give "
        f"{tmp_path}/scope/f as the workload left it (a read() on a descriptor it was also written through "
        "moves the file position unseen: reads are not recorded)")
