"""The event log (JSON Lines, `--events`): the seam between tracing and analysis.

Written live by the session, read back by `fsaudit report`; one event per
line after a header, then a trailer that says the log is whole."""

from __future__ import annotations

import json
from itertools import islice
from sys import intern
from typing import IO, Iterator

from .outputs.printable import printable


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
    "stack": _STRINGS, "bound": _STR, "family": _STR, "t_first": _NUMBER,
}
# Every event the tracer writes has these; rules order calls by t and tid (FS101, FS106).
REQUIRED_EVENT_FIELDS = frozenset({"t", "syscall", "pid", "tid", "ret"})
INT_FLAGS_SYSCALLS = frozenset({"fork", "close_range"})   # their flags are the raw number
HEADER_FIELDS: dict[str, tuple] = {"mode": _STR, "host": _STR, "kernel": _STR, "pid": _INT,
                                   "argv": _STRINGS, "inject": _STRINGS, "mounts": _LIST, "cache_home": _STR}
# (field, type) pairs _wrong_field passes without looking further: a list of _STRINGS
# needs its items looked at. EventLog.events adds the fields it does not check as they
# come, up to ACCEPTED_KEPT pairs in all.
ACCEPTED_FIELDS = frozenset((key, kind) for key, kinds in EVENT_FIELDS.items() if kinds is not _STRINGS
                            for kind in kinds)
ACCEPTED_KEPT = 4096
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


def _wrong_mounts(mounts: list) -> str | None:
    """The header's mount table is a list of [mount point, fstype] pairs of strings."""
    for mount in mounts:
        if not (mount.__class__ is list and len(mount) == 2 and all(part.__class__ is str for part in mount)):
            return f"field mounts must list [mount point, fstype] pairs, not {printable(json.dumps(mount)[:60])}"
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
        accepted = set(ACCEPTED_FIELDS)
        for number, line, event in self._decoded():
            if trailer is not None:
                raise EventLogError(f"line {trailer[0]}: a trailer before the end of the log")
            if event is _TRUNCATED:
                self._warn(f"line {number}: truncated last line skipped")
                break
            if event.__class__ is not dict or not REQUIRED_EVENT_FIELDS.issubset(event):
                if event.__class__ is dict and TRAILER_KEY in event:
                    trailer = (number, _trailer_count(event, number))
                    continue
                raise EventLogError(f"line {number}: not an event (needs t, syscall, pid, tid and ret)")
            # The common shapes in one C-level test: every (field, type) pair seen to pass.
            if not accepted.issuperset(zip(event, map(type, event.values()))):
                wrong = _wrong_field(event, EVENT_FIELDS)
                if wrong is not None:
                    raise EventLogError(f"line {number}: {wrong}")
                if len(accepted) < ACCEPTED_KEPT:   # fields no check reads pass whatever their type
                    accepted.update((key, value.__class__) for key, value in event.items() if key not in EVENT_FIELDS)
            wrong = _wrong_value(event)
            if wrong is not None:
                raise EventLogError(f"line {number}: {wrong}")
            # Strings many events repeat, shared as the tracer's are (each line's are new).
            event["syscall"] = intern(event["syscall"])
            kind = event.get("kind")
            if kind is not None:
                event["kind"] = intern(kind)
            flags = event.get("flags")
            if flags.__class__ is list:
                event["flags"] = [intern(flag) if flag.__class__ is str else flag for flag in flags]
            read += 1
            yield event
        if trailer is None:
            self.incomplete = ("the event log ends without its trailer (fsaudit stopped before it "
                               f"finished writing): {read} events read")
        elif trailer[1] != read:
            self.incomplete = f"the event log's trailer counts {trailer[1]} events, but it has {read}"

    def _decoded(self) -> Iterator[tuple[int, str, object]]:
        """(line number, line, its JSON value or _TRUNCATED), DECODE_BATCH lines decoded at a
        time as one JSON array: half the time of a json.loads per line, and the events of a
        batch share their keys' strings (json shares the keys of one document), which the
        events the model keeps would otherwise each hold a copy of (about 0.4 KB an event).
        A batch that does not decode as one array of as many values as lines is decoded
        again line by line, which names the line at fault. (Lines malformed one by one
        that make such an array together, a bracket opened on one and closed on the
        next with a value after it, are read as they decode: no writer makes them.)"""
        lines = self._lines
        while True:
            batch = list(islice(lines, DECODE_BATCH))
            if not batch:
                return
            try:
                values = json.loads("[" + ",".join(line for _number, line in batch) + "]")
            except (ValueError, RecursionError):
                values = None
            if values is not None and len(values) == len(batch):
                for (number, line), value in zip(batch, values):
                    yield number, line, value
                continue
            for number, line in batch:
                try:
                    value = _decode(line, number)
                except json.JSONDecodeError as exc:
                    if line.endswith("\n"):
                        raise EventLogError(f"line {number}: malformed JSON ({exc.msg})") from None
                    value = _TRUNCATED
                yield number, line, value


DECODE_BATCH = 512
_TRUNCATED = object()     # EventLog._decoded: a last line cut short


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
    wrong = _wrong_field(header, HEADER_FIELDS) or _wrong_mounts(header.get("mounts", ()))
    if wrong is not None:
        raise EventLogError(f"line 1: header {wrong}")
    return EventLog(header, enumerate(stream, start=2), warn)
