"""The raw kernel event (shared layout with probes/fsaudit.c) and the JSON event log."""

from __future__ import annotations

import errno
import json
import os
import struct
from typing import IO, Iterator

from .outputs.printable import printable

PATH_LEN = 256
STACK_WORDS = 48     # STACK_SCAN + STACK_DEPTH in probes/fsaudit.c
PY_FRAMES = 8
RECORD_FIELDS = 15   # ts, ts_first, pid, tid, nr, epoch, ret, args[6], path, path2; a stack's words follow
RECORD_LENGTH = struct.Struct("=I")   # the ring buffer's record header: length, then flags and page offset


class RecordLayout:
    """struct event in probes/fsaudit.c, as records arrive: ts, ts_first, pid,
    tid, nr, epoch, ret, args[6], with --stacks stack[STACK_WORDS],
    py_code[PY_FRAMES], py_lasti[PY_FRAMES], then path and path2 cut where the
    record ends (the kernel sends no more than the data). Unpacked as one
    tuple: the fixed fields, path, path2, then the stack fields."""

    HEAD = "=QQIIiIq6Q"
    STACK = f"{STACK_WORDS}Q{PY_FRAMES}Q{PY_FRAMES}I"

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
            return rec[:13] + rec[-2:] + rec[13:-2]
        return rec


EV_WRITE_RUN, EV_FORK, EV_EXEC, EV_EXIT, EV_STDIO_LOST, EV_AUXV, EV_PYCODE = -1, -2, -3, -4, -5, -6, -7


class InjectedRecord(tuple):
    """A raw record fsaudit makes for a call it failed with --inject: the
    kernel never ran the call, so no tracepoint saw it. `injection` is the spec."""
    injection: str

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


HEADER_SCHEMA = "fsaudit.events/1"


class EventLogWriter:
    """Writes the JSON Lines event log; ensure_ascii keeps surrogate escapes reversible.

    finish() ends the log with a trailer, {"trailer": "fsaudit.events/1",
    "events": N}: a log without one was cut short (fsaudit was killed, or
    the disk filled), and N tells a reader that no line went missing."""

    def __init__(self, stream: IO[str], header: dict) -> None:
        self._stream = stream
        self.events = 0
        self._stream.write(json.dumps({"schema": HEADER_SCHEMA, **header}) + "\n")

    def write(self, event: dict) -> None:
        self._stream.write(json.dumps(event, separators=(",", ":")) + "\n")
        self.events += 1

    def finish(self) -> None:
        self._stream.write(json.dumps({"trailer": HEADER_SCHEMA, "events": self.events}) + "\n")


class EventLogError(Exception):
    """A malformed event log; the message names the line."""


# The fields of an event that the engine and rules read, with the types they
# can read: a field of another type is an input error, not a traceback later.
# Other fields pass through unread. Checked per event, by the exact class of
# each field present (bool is no integer here: no writer makes one). _STRINGS:
# a list whose items are read as strings (flags and prot are only searched).
_NONE = type(None)
_NUMBER, _INT, _STR, _LIST, _STRINGS = (int, float), (int,), (str,), (list,), (list,)
EVENT_FIELDS: dict[str, tuple] = {
    "t": _NUMBER, "pid": _INT, "tid": _INT, "syscall": _STR, "ret": (int, str), "fd": _INT,
    "child": _INT, "calls": _INT, "bytes": _INT, "size_max": _INT, "count": _INT, "length": _INT,
    "size_before": (int, _NONE), "latency_us": (int, float, _NONE), "path": _STR, "path2": _STR,
    "kind": _STR, "injection": _STR, "name": _STR, "version": (str, _NONE), "code": (int, _NONE),
    "signal": (int, _NONE), "flags": _LIST, "prot": _LIST, "rwf": _STRINGS, "argv": _STRINGS,
    "stack": _STRINGS,
}
INT_FLAGS_SYSCALLS = frozenset({"fork", "close_range"})   # their flags are the raw number
HEADER_FIELDS: dict[str, tuple] = {"mode": _STR, "host": _STR, "kernel": _STR, "pid": _INT,
                                   "argv": _STRINGS, "inject": _STRINGS}
_TYPE_NAMES = {int: "an integer", str: "a string", list: "a list", _NONE: "null"}


def _expected(allowed: tuple) -> str:
    if allowed is _STRINGS:
        return "a list of strings"
    return " or ".join("a number" if kind is float else _TYPE_NAMES[kind]
                       for kind in allowed if not (kind is int and float in allowed))


def _wrong_field(record: dict, fields: dict[str, tuple]) -> str | None:
    """What is wrong with a field of record that fields names (the field and its value), else None."""
    for key, value in record.items():
        allowed = fields.get(key)
        if allowed is None or (value.__class__ in allowed and allowed is not _STRINGS):
            continue
        if allowed is _STRINGS and value.__class__ is list:
            try:
                "".join(value)          # the quickest check that every item is a string
                continue
            except TypeError:
                pass
        elif key == "flags" and value.__class__ is int and record.get("syscall") in INT_FLAGS_SYSCALLS:
            continue
        return f"field {key} must be {_expected(allowed)}, not {printable(json.dumps(value)[:60])}"
    return None


def _wrong_value(event: dict) -> str | None:
    """What the engine cannot take in an event whose fields have the right types, else None."""
    if event["pid"] < 1 and event["syscall"] != "lost":     # the tracer's own records have pid 0
        return "field pid must be at least 1"
    if event.get("calls", 1) < 1:
        return "field calls must be at least 1"
    if event["syscall"] == "runtime" and "name" not in event:
        return "a runtime event needs a name"
    return None


def _decode(line: str, number: int):
    try:
        return json.loads(line)
    except RecursionError:
        raise EventLogError(f"line {number}: JSON nested too deeply") from None


TRAILER_KEY = "trailer"


class EventLog:
    """An event log being read: its header, then events() once. When events()
    is exhausted, `incomplete` says why the log may lack events (no trailer:
    the writer was stopped; or the trailer counts other lines than were read),
    else None."""

    def __init__(self, header: dict, lines: Iterator[tuple[int, str]], warn) -> None:
        self.header = header
        self.incomplete: str | None = None
        self._lines = lines
        self._warn = warn

    def events(self) -> Iterator[dict]:
        trailer = None            # (line number, events it counts): only the last line may be one
        read = 0
        for number, line in self._lines:
            if trailer is not None:
                raise EventLogError(f"line {trailer[0]}: a trailer before the end of the log")
            try:
                event = _decode(line, number)
            except json.JSONDecodeError as exc:
                if line.endswith("\n"):
                    raise EventLogError(f"line {number}: malformed JSON ({exc.msg})") from None
                self._warn(f"line {number}: truncated last line skipped")
                break
            if event.__class__ is not dict or "syscall" not in event or "pid" not in event or "ret" not in event:
                if event.__class__ is dict and TRAILER_KEY in event:
                    trailer = (number, _trailer_count(event, number))
                    continue
                raise EventLogError(f"line {number}: not an event (needs syscall, pid and ret)")
            wrong = _wrong_field(event, EVENT_FIELDS) or _wrong_value(event)
            if wrong is not None:
                raise EventLogError(f"line {number}: {wrong}")
            read += 1
            yield event
        if trailer is None:
            self.incomplete = ("the event log ends without its trailer (fsaudit stopped before it "
                               f"finished writing): {read} events read")
        elif trailer[1] != read:
            self.incomplete = f"the event log's trailer counts {trailer[1]} events, but it has {read}"


def _trailer_count(record: dict, number: int) -> int:
    count = record.get("events")
    if record[TRAILER_KEY] != HEADER_SCHEMA or count.__class__ is not int or count < 0:
        raise EventLogError(f"line {number}: not an fsaudit trailer "
                            f"(expected {{\"{TRAILER_KEY}\": \"{HEADER_SCHEMA}\", \"events\": N}})")
    return count


def read_event_log(stream: IO[str], warn) -> EventLog:
    """Read and check the header; the events follow from EventLog.events().
    warn(message) reports a truncated last line, which is skipped."""
    try:
        header = _decode(stream.readline(), 1)
    except json.JSONDecodeError:
        raise EventLogError("line 1: not a JSON header") from None
    if header.__class__ is not dict or header.get("schema") != HEADER_SCHEMA:
        raise EventLogError(f"line 1: not an fsaudit event log (expected schema {HEADER_SCHEMA})")
    wrong = _wrong_field(header, HEADER_FIELDS)
    if wrong is not None:
        raise EventLogError(f"line 1: header {wrong}")
    return EventLog(header, enumerate(stream, start=2), warn)
