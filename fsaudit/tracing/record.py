"""The kernel's record (struct event in probes/fsaudit.h), decoded by RecordLayout.
What its syscall numbers and flags mean is syscalls.py's."""

from __future__ import annotations

import struct
import sys
from typing import NamedTuple

# The #defines of probes/fsaudit.h, every one (tests/test_ringbuf.py compares them).
PATH_LEN = 256
EV_WRITE_RUN, EV_FORK, EV_EXEC, EV_EXIT, EV_STDIO_LOST, EV_AUXV, EV_PYCODE, EV_DATA = -1, -2, -3, -4, -5, -6, -7, -8
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
        self._by_length = StructsByLength(self._fixed, self.path_offset)
        # A record without paths and the header of the next, back to back: a run of
        # them (a database's records: writes, sends, syncs) is unpacked by one iter_unpack.
        self._bare = None if stacks or self.path_offset % 8 else struct.Struct(f"=8x{self.HEAD[1:]}0s0s")

    def unpack_all(self, chunk: bytes, offsets: list[int]) -> list[tuple]:
        """The records whose data start at offsets (ascending, in one chunk), in order.

        Every record is at least path_offset long, so offsets that step by exactly a
        bare record and its header, from the first to the last, are records without
        paths back to back (the last one's length says if it is one too): all of them
        one iter_unpack. Else one comprehension: each record's length is the word of
        its ring header (a chunk holds whole records, 8-byte aligned), its Struct the
        one of that length. A call per record cost twice as much; iter_unpack over
        each stretch of bare records, found by a search, cost as much on records
        that alternate."""
        if self.stacks:
            return [self.unpack_from(chunk, offset) for offset in offsets]
        words, bare, by_length = memoryview(chunk).cast("I"), self._bare, self._by_length
        if (bare is not None and offsets and offsets[-1] - offsets[0] == bare.size * (len(offsets) - 1)
                and words[(offsets[-1] - 8) >> 2] == self.path_offset):
            start = offsets[0] - 8
            return list(bare.iter_unpack(memoryview(chunk)[start:start + bare.size * len(offsets)]))
        return [by_length[words[(offset - 8) >> 2]].unpack_from(chunk, offset) for offset in offsets]

    def unpack_from(self, chunk: bytes, offset: int) -> tuple:
        """The record whose data starts at offset (its ring buffer header just before it)."""
        rec = self._by_length[RECORD_LENGTH.unpack_from(chunk, offset - 8)[0]].unpack_from(chunk, offset)
        if self.stacks:
            return rec[:PATH_INDEX] + rec[-2:] + rec[PATH_INDEX:-2]
        return rec


class StructsByLength(dict):
    """A record's length -> the Struct that unpacks it: the fixed members, then path
    and path2 cut where the record ends. Made at a length's first record."""

    def __init__(self, fixed: str, path_offset: int) -> None:
        super().__init__()
        self.fixed, self.path_offset = fixed, path_offset

    def __missing__(self, length: int) -> struct.Struct:
        paths = length - self.path_offset
        layout = self[length] = struct.Struct(f"{self.fixed}{min(paths, PATH_LEN)}s{max(paths - PATH_LEN, 0)}s")
        return layout


FS_ENCODING, FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()   # os.fsdecode's


def decode_path(raw: bytes) -> str:
    """Bytes from the kernel to str, as os.fsdecode (at half its cost): non-UTF-8
    bytes survive via surrogateescape."""
    if not raw or not raw[0]:      # most records carry no path
        return ""
    return raw.partition(b"\0")[0].decode(FS_ENCODING, FS_ERRORS)
