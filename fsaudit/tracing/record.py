"""The kernel's record (struct event in probes/fsaudit.h), decoded by RecordLayout,
and the syscall numbers and flag tables that name what it carries."""

from __future__ import annotations

import errno
import os
import struct
from typing import NamedTuple

# The #defines of probes/fsaudit.h, every one (tests/test_ringbuf.py compares them).
PATH_LEN = 256
EV_WRITE_RUN, EV_FORK, EV_EXEC, EV_EXIT, EV_STDIO_LOST, EV_AUXV, EV_PYCODE = -1, -2, -3, -4, -5, -6, -7
STACK_SCAN = 32      # words at the stack pointer, then the frame-pointer chain
STACK_DEPTH = 16
STACK_WORDS = STACK_SCAN + STACK_DEPTH
PY_FRAMES = 8

RECORD_LENGTH = struct.Struct("=I")   # the ring buffer's record header: length, then flags and page offset


class Record(NamedTuple):
    """A record as RecordLayout unpacks it: struct event's members in order,
    args[6] as arg0 to arg5, path and path2 as bytes up to where the record
    ends. With --stacks the STACK_MEMBERS' values follow (a plain tuple then).

    The tracer's hot path gets plain tuples in this order and names their
    values by unpacking them (0.06 us; a Record per event would add 0.4 us to
    the 3 to 6 us the resolver spends on one); code off that path builds and
    reads records by these names."""

    ts: int
    ts_first: int
    pid: int
    tid: int
    nr: int
    epoch: int
    ret: int
    arg0: int
    arg1: int
    arg2: int
    arg3: int
    arg4: int
    arg5: int
    path: bytes = b""
    path2: bytes = b""


RECORD_FIELDS = len(Record._fields)
PATH_INDEX = Record._fields.index("path")
ARG_FIELDS = tuple(f"arg{i}" for i in range(6))   # args[i] is Record's arg{i}


class InjectedRecord(Record):
    """A raw record fsaudit makes for a call it failed with --inject: the
    kernel never ran the call, so no tracepoint saw it. `injection` is the spec."""
    injection: str


class RecordLayout:
    """struct event in probes/fsaudit.h, as records arrive: HEAD, with --stacks
    STACK_MEMBERS, then path and path2 cut where the record ends (the kernel
    sends no more than the data). Unpacked as one tuple, in Record's order,
    the stack's values last."""

    HEAD = "=QQIIiIqQQQQQQ"   # one letter per Record field before path
    STACK_MEMBERS = (("stack", f"{STACK_WORDS}Q"), ("py_code", f"{PY_FRAMES}Q"), ("py_lasti", f"{PY_FRAMES}I"))
    STACK = "".join(fmt for _, fmt in STACK_MEMBERS)

    def __init__(self, stacks: bool) -> None:
        self.stacks = stacks
        self._fixed = self.HEAD + (self.STACK if stacks else "")
        self.path_offset = struct.calcsize(self._fixed)
        self._by_length: dict[int, struct.Struct] = {}

    def _struct(self, length: int) -> struct.Struct:
        paths = length - self.path_offset
        layout = self._by_length[length] = struct.Struct(f"{self._fixed}{min(paths, PATH_LEN)}s{max(paths - PATH_LEN, 0)}s")
        return layout

    def unpack_from(self, chunk: bytes, offset: int) -> tuple:
        """The record whose data starts at offset (its ring buffer header just before it)."""
        length = RECORD_LENGTH.unpack_from(chunk, offset - 8)[0]
        rec = (self._by_length.get(length) or self._struct(length)).unpack_from(chunk, offset)
        if self.stacks:
            return rec[:PATH_INDEX] + rec[-2:] + rec[PATH_INDEX:-2]
        return rec


# x86-64 syscall numbers of everything the probe reports.
SYSCALLS = {
    1: "write", 2: "open", 3: "close", 9: "mmap", 11: "munmap", 18: "pwrite64",
    20: "writev", 22: "pipe", 26: "msync", 32: "dup", 33: "dup2", 40: "sendfile",
    41: "socket", 43: "accept", 44: "sendto", 46: "sendmsg", 53: "socketpair",
    56: "clone", 57: "fork", 58: "vfork", 72: "fcntl", 74: "fsync", 75: "fdatasync",
    76: "truncate", 77: "ftruncate", 80: "chdir", 81: "fchdir", 82: "rename",
    83: "mkdir", 84: "rmdir", 85: "creat", 86: "link", 87: "unlink", 88: "symlink",
    133: "mknod", 162: "sync", 206: "io_setup", 209: "io_submit", 257: "openat",
    258: "mkdirat", 259: "mknodat", 263: "unlinkat", 264: "renameat", 265: "linkat",
    266: "symlinkat", 275: "splice", 277: "sync_file_range", 285: "fallocate",
    288: "accept4", 292: "dup3", 293: "pipe2", 296: "pwritev", 306: "syncfs",
    307: "sendmmsg", 316: "renameat2", 319: "memfd_create", 326: "copy_file_range",
    328: "pwritev2", 425: "io_uring_setup", 435: "clone3", 436: "close_range",
    437: "openat2",
}

O_FLAGS = [
    (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"), (0o10000, "O_DSYNC"), (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"), (0o400000, "O_NOFOLLOW"), (0o2000000, "O_CLOEXEC"),
    (0o4010000, "O_SYNC"), (0o20200000, "O_TMPFILE"),
]
ACCMODES = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}
RWF_FLAGS = [(0x1, "RWF_HIPRI"), (0x2, "RWF_DSYNC"), (0x4, "RWF_SYNC"), (0x8, "RWF_NOWAIT"), (0x10, "RWF_APPEND")]
PROT_FLAGS = [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")]
MAP_FLAGS = [(1, "MAP_SHARED"), (2, "MAP_PRIVATE"), (0x20, "MAP_ANONYMOUS"), (0x10, "MAP_FIXED")]
MS_FLAGS = [(1, "MS_ASYNC"), (2, "MS_INVALIDATE"), (4, "MS_SYNC")]
RENAME_FLAGS = [(1, "RENAME_NOREPLACE"), (2, "RENAME_EXCHANGE"), (4, "RENAME_WHITEOUT")]
SFR_FLAGS = [(1, "SYNC_FILE_RANGE_WAIT_BEFORE"), (2, "SYNC_FILE_RANGE_WRITE"), (4, "SYNC_FILE_RANGE_WAIT_AFTER")]


_HEAVIEST_FIRST: dict[int, list] = {}   # id of a table above -> it sorted, composite flags first


def flag_names(value: int, table: list[tuple[int, str]]) -> list[str]:
    """Names of the bits set in value; composite flags (O_SYNC) win over their parts."""
    order = _HEAVIEST_FIRST.get(id(table))
    if order is None:   # sorted once per table, not per event
        order = _HEAVIEST_FIRST[id(table)] = sorted(table, key=lambda item: -bin(item[0]).count("1"))
    names, seen = [], 0
    for bit, name in order:
        if value & bit == bit and not (seen & bit == bit):
            names.append(name)
            seen |= bit
    if value & ~seen:
        names.append(hex(value & ~seen))
    return names


def open_flag_names(flags: int) -> list[str]:
    return [ACCMODES.get(flags & 3, "O_ACCMODE")] + flag_names(flags & ~3, O_FLAGS)


def ret_value(ret: int) -> int | str:
    """A syscall return as the log shows it: the value, or the errno's name."""
    if -4096 < ret < 0:
        return errno.errorcode.get(-ret, str(ret))
    return ret


def decode_path(raw: bytes) -> str:
    """Bytes from the kernel to str; non-UTF-8 bytes survive via surrogateescape."""
    if not raw or not raw[0]:      # most records carry no path
        return ""
    return os.fsdecode(raw.split(b"\0", 1)[0])
