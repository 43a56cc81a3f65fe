"""Reading event logs back (`fsaudit report`): fields of the wrong type, deep
nesting, a bad header and the trailer are input errors or incompleteness,
never a traceback. On a log recorded from a real traced run (module fixture
`recorded`), edited line by line."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import typer

from conftest import fsaudit
from fsaudit.commands import report as report_command

MODES = ("fs101", "child", "dirfd", "rwf_ok", "link", "fs107", "fs303", "ack_pair", "fs302", "fs901",
         "thread", "fs104_nointent", "fs304_syncfs")
TRAILER = "fsaudit.events/1"


class Recorded:
    def __init__(self, directory: Path, lines: list[str]) -> None:
        self.dir = directory
        self.header = lines[0]
        self.events = lines[1:]       # without a trailer, whatever the writer ended the log with

    def first(self, syscall: str) -> int:
        """The index in events of the first event of syscall."""
        return next(i for i, line in enumerate(self.events) if json.loads(line)["syscall"] == syscall)

    def write(self, path: Path, events: list[str] | None = None, header: str | None = None,
              trailer: int | None = None) -> Path:
        """A log of header and events, ended by a trailer counting `trailer` events when given."""
        lines = [header or self.header] + (self.events if events is None else events)
        if trailer is not None:
            lines.append(json.dumps({"trailer": TRAILER, "events": trailer}) + "\n")
        path.write_text("".join(lines))
        return path

    def edited(self, index: int, **fields) -> list[str]:
        """events with events[index]'s fields set as given."""
        event = json.loads(self.events[index])
        event.update(fields)
        return self.events[:index] + [json.dumps(event) + "\n"] + self.events[index + 1:]


@pytest.fixture(scope="module")
def recorded(bpf, build, tmp_path_factory) -> Recorded:
    """`fsaudit run --events` of rules.c in many modes, with --stacks and an injected failure
    (rules.c sees the close fail and exits 100), so that most kinds of event are in it."""
    directory = tmp_path_factory.mktemp("eventlog")
    for mode in MODES:
        (directory / mode).mkdir()
    proc = fsaudit("run", "--fail-on", "never", "--stacks", "--inject", "close=EIO:path=*/fs101/*",
                   "--events", "events.jsonl", "--", str(build("rules", "-pthread")), *MODES, cwd=directory)
    lines = (directory / "events.jsonl").read_text().splitlines(keepends=True)
    assert proc.returncode == 100, proc.stderr
    if "trailer" in json.loads(lines[-1]):
        lines.pop()
    rec = Recorded(directory, lines)
    events = [json.loads(line) for line in rec.events]
    assert {"fork", "exec", "exit", "runtime", "pwritev2", "rename", "link", "mmap", "inherit"} <= {
        e["syscall"] for e in events}
    assert any("stack" in e for e in events) and any("injected" in e for e in events)
    return rec


def replay(log: Path, *options: str, cwd: Path | None = None) -> tuple:
    """`fsaudit report LOG --json OUT`: (process, report or None)."""
    out = log.with_suffix(".report.json")
    out.unlink(missing_ok=True)
    proc = fsaudit("report", str(log), "--fail-on", "never", "--json", str(out), *options, cwd=cwd or log.parent)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def assert_input_error(proc, log: Path, line: int, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"fsaudit: {log}: line {line}: "), proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


# Fields of the wrong type: (syscall of the event edited, field, value).
WRONG_FIELDS = [
    ("write", "calls", "many"),
    ("write", "count", "many"),
    ("rename", "path", ["a", "b"]),
    ("rename", "syscall", ["rename"]),
    ("link", "path2", {"name": "x"}),
    ("openat", "t", "soon"),
    ("openat", "pid", "1"),
    ("openat", "tid", None),
    ("openat", "fd", 3.5),
    ("openat", "flags", 577),          # a number is only fork's and close_range's flags
    ("fsync", "ret", [0]),
    ("fsync", "latency_us", "slow"),
    ("write", "bytes", "lots"),
    ("write", "size_max", True),
    ("mmap", "prot", 3),
    ("pwritev2", "rwf", [["RWF_DSYNC"]]),
    ("exec", "argv", ["rules", 1]),
    ("exit", "code", "0"),
    ("runtime", "name", ["c"]),
    ("runtime", "version", 11),
    ("openat", "stack", "main"),
]


@pytest.mark.parametrize("syscall, field, value", WRONG_FIELDS, ids=[f"{s}.{f}" for s, f, _ in WRONG_FIELDS])
def test_a_field_of_the_wrong_type_is_exit_2_naming_line_and_field(recorded, tmp_path, syscall, field, value):
    index = recorded.first(syscall)
    log = recorded.write(tmp_path / "bad.jsonl", recorded.edited(index, **{field: value}))
    proc, report = replay(log)
    assert_input_error(proc, log, index + 2, f"field {field} must be")
    assert report is None


@pytest.mark.parametrize("fields, says", [
    ({"calls": 0}, "calls must be at least 1"),
    ({"pid": 0}, "pid must be at least 1"),
])
def test_a_value_the_engine_cannot_take_is_exit_2(recorded, tmp_path, fields, says):
    index = recorded.first("write")
    log = recorded.write(tmp_path / "bad.jsonl", recorded.edited(index, **fields))
    assert_input_error(replay(log)[0], log, index + 2, says)


def test_deeply_nested_json_is_exit_2_naming_the_line(recorded, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    events = recorded.events[:3] + ['{"t": 0.1, "pid": 1, "tid": 1, "syscall": "write", "ret": 0, "x": ' + deep + "}\n"]
    log = recorded.write(tmp_path / "deep.jsonl", events + recorded.events[3:])
    assert_input_error(replay(log)[0], log, 5, "nested too deeply")
    header = recorded.header.rstrip().rstrip("}") + ', "x": ' + deep + "}\n"
    log = recorded.write(tmp_path / "deep-header.jsonl", header=header)
    assert_input_error(replay(log)[0], log, 1, "nested too deeply")


@pytest.mark.parametrize("field, value", [("inject", "close=EIO"), ("inject", ["close=EIO", 2]), ("argv", "rules"),
                                          ("pid", "42")])
def test_a_header_field_of_the_wrong_type_is_exit_2(recorded, tmp_path, field, value):
    header = json.loads(recorded.header)
    header[field] = value
    log = recorded.write(tmp_path / "header.jsonl", header=json.dumps(header) + "\n")
    assert_input_error(replay(log)[0], log, 1, f"header field {field} must be")


# Systematic mutation: no wrong type in any field of any kind of event (or the header) is a traceback.

WRONG_VALUES = ["many", 7, 0, -1, 1.5, True, None, [], ["x", 1], {"x": 1}, [[["deep"]]]]
DELETED = object()


def _replay_here(log: Path, out: Path) -> tuple[int, str]:
    """`fsaudit report LOG` with every output, in this process (a process per
    mutation would take minutes): (exit status, stderr). Any exception but the
    command's exit escapes, with its traceback."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            report_command.command(log, json_path=str(out / "r.json"), events=None, sarif=str(out / "r.sarif"),
                                   junit=str(out / "r.xml"), html=None, output=None, format="text", fail_on="never",
                                   statistics=False, path=[], exclude=[], include=[], config=None, source_root=None)
        except typer.Exit as exc:
            return exc.exit_code, stderr.getvalue()
    raise AssertionError("fsaudit report returned without an exit status")


def test_no_mutation_of_a_recorded_log_is_a_traceback(recorded, tmp_path):
    seen: set[str] = set()
    targets = []          # (line number, record): the header and the first event of each syscall
    for number, line in enumerate([recorded.header] + recorded.events, start=1):
        record = json.loads(line)
        if number == 1 or record["syscall"] not in seen:
            seen.add(record.get("syscall", ""))
            targets.append((number, record))
    lines = [recorded.header] + recorded.events
    log = tmp_path / "mutated.jsonl"
    wrong = []
    for number, record in targets:
        for field in record:
            if field == "schema":
                continue
            for value in WRONG_VALUES + [DELETED]:
                mutated = {k: v for k, v in record.items() if k != field or value is not DELETED}
                if value is not DELETED:
                    mutated[field] = value
                log.write_text("".join(lines[:number - 1] + [json.dumps(mutated) + "\n"] + lines[number:]))
                status, stderr = _replay_here(log, tmp_path)
                one_line = stderr.count("\n") == 1 and stderr.startswith(f"fsaudit: {log}: line {number}: ")
                if status not in (0, 2) or (status == 2 and not one_line):
                    wrong.append((number, field, value, status, stderr))
    assert len(targets) > 20
    assert not wrong, wrong[:5]


# The trailer: {"trailer": "fsaudit.events/1", "events": N}, the last line of a log fsaudit finished.


def test_a_log_with_its_trailer_is_complete_and_the_trailer_is_no_event(recorded, tmp_path):
    log = recorded.write(tmp_path / "whole.jsonl", trailer=len(recorded.events))
    proc, report = replay(log)
    assert proc.returncode == 0, proc.stderr
    assert report["complete"] and report["incomplete"] == []
    assert report["counts"]["events"] == len(recorded.events)


def test_a_log_without_its_trailer_replays_as_incomplete_saying_why(recorded, tmp_path):
    complete = replay(recorded.write(tmp_path / "whole.jsonl", trailer=len(recorded.events)))[1]
    proc, report = replay(recorded.write(tmp_path / "killed.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert not report["complete"]
    assert report["incomplete"] == ["the event log ends without its trailer (fsaudit stopped before it finished "
                                    f"writing): {len(recorded.events)} events read"]
    assert report["findings"] == complete["findings"]
    text = fsaudit("report", str(tmp_path / "killed.jsonl"), "--fail-on", "never").stdout
    assert text.startswith("WARNING: this report is incomplete: the event log ends without its trailer")


def test_a_log_cut_inside_its_trailer_is_incomplete(recorded, tmp_path):
    whole = recorded.write(tmp_path / "whole.jsonl", trailer=len(recorded.events)).read_text()
    log = tmp_path / "cut.jsonl"
    log.write_text(whole[:-10])
    proc, report = replay(log)
    assert proc.returncode == 0, proc.stderr
    assert f"line {len(recorded.events) + 2}: truncated last line skipped" in proc.stderr
    assert not report["complete"] and "without its trailer" in report["incomplete"][0]


@pytest.mark.parametrize("counted", [-3, +3])
def test_a_trailer_counting_other_lines_than_the_log_has_is_incomplete(recorded, tmp_path, counted):
    events = len(recorded.events)
    proc, report = replay(recorded.write(tmp_path / "counted.jsonl", trailer=events + counted))
    assert proc.returncode == 0, proc.stderr
    assert report["incomplete"] == [f"the event log's trailer counts {events + counted} events, but it has {events}"]


def test_a_trailer_before_the_end_of_the_log_is_exit_2(recorded, tmp_path):
    trailer = json.dumps({"trailer": TRAILER, "events": 10}) + "\n"
    log = recorded.write(tmp_path / "middle.jsonl", recorded.events[:10] + [trailer] + recorded.events[10:])
    assert_input_error(replay(log)[0], log, 12, "a trailer before the end of the log")


@pytest.mark.parametrize("trailer", [{"trailer": "fsaudit.events/9", "events": 3}, {"trailer": TRAILER},
                                     {"trailer": TRAILER, "events": "all"}])
def test_a_trailer_fsaudit_does_not_write_is_exit_2(recorded, tmp_path, trailer):
    log = recorded.write(tmp_path / "odd.jsonl", recorded.events + [json.dumps(trailer) + "\n"])
    assert_input_error(replay(log)[0], log, len(recorded.events) + 2, "not an fsaudit trailer")
