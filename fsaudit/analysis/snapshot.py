"""What the live view shows, taken from the engine when it redraws: plain frozen records, so
the view reads no engine internals and holds no engine object between two redraws (as
memray's TUI is handed a snapshot by its reader at each refresh).

The busiest files are ranked by a pass over every file, which the view asks for about once
a second (rank=True); in between, each snapshot brings the rows of the previous one up to
date by their files' serial numbers, so a row follows its file through a rename or an
unlink (and shows it deleted) until the next ranking. Files moved beyond the engine's
MOVES_KEPT between two snapshots are found again by that ranking; those unlinked then are
no longer shown.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from itertools import islice
from types import MappingProxyType
from typing import Mapping, NamedTuple

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}

# The rows are NamedTuples: as frozen as a frozen dataclass, and made in a third of the time
# (up to 500 file rows at every redraw, 5 a second).


class FileRow(NamedTuple):
    serial: int                         # the FileState's: the same file through settling and renames
    path: str
    state: str                          # file_state(): deleted, dirty, renamed, synced or clean
    renamed_from: str | None            # the path before its latest rename
    writes: int
    dirty_bytes: int                    # unsynced
    last_sync_at: float | None          # on the events' clock (their `t`)
    ever_synced: bool
    timed_syncs: int                    # syncs with a latency, of which:
    sync_p50_us: int | None
    sync_max_us: int | None


class ProcessRow(NamedTuple):
    pid: int
    argv: tuple | None
    exe: str | None
    runtime_name: str | None
    runtime_version: str | None
    syscalls: int                       # each call of a write run counted
    writes: int
    syncs: int                          # fsync and fdatasync
    exited: bool
    exit_code: int | None
    exit_signal: int | None


class FindingRow(NamedTuple):
    rule: str
    severity: str
    message: str
    count: int
    path: str | None
    target_path: str | None
    pid: int                            # the process that made it


@dataclass(frozen=True, slots=True)
class Snapshot:
    events: int
    lost_events: int
    injections_fired: Mapping[str, int]   # --inject spec -> calls failed on purpose
    processes: tuple[ProcessRow, ...]     # in the order the engine met them
    files: tuple[FileRow, ...]            # the busiest, most writes first, with those deleted since shown
    files_reported: int | None            # keep=0 only: files as the report counts them (in scope,
                                          # regular, written or synced)
    findings: tuple[FindingRow, ...]      # in the order raised (none with keep=0)
    marked: Mapping[str, str]             # path -> the worst severity of the findings about it
    moves_seen: int                       # the engine's move_count when taken
    finding_count: int                    # the findings so far, rows or not


def file_state(state) -> str:
    """One word for a FileState: deleted, dirty, renamed (since its last sync), synced or clean."""
    if state.unlinked:
        return "deleted"
    if state.is_dirty:
        return "dirty"
    if state.renamed_from is not None and state.renamed_index > state.last_sync_index:
        return "renamed"
    if state.last_sync_index:
        return "synced"
    return "clean"


def take_snapshot(engine, previous: Snapshot | None = None, *, keep: int, rank: bool = True) -> Snapshot:
    """The engine's state now. keep: how many of the busiest files to rank; 0: none, the files
    the report would count instead (a pass over every file either way), and no rows of findings
    (the progress line counts them: a row each would read back every finding spilled to disk
    and hold its strings, fsaudit.analysis.findings). rank: rank them afresh;
    otherwise the rows of previous, brought up to date. previous also spares re-making the
    rows of findings that have not changed."""
    files_reported = None
    if not keep:
        rows = []
        files_reported = sum(1 for s in engine.files.values() if s.in_scope and not s.is_dir and (s.writes or s.syncs))
    elif previous is None:
        rows = _rank(engine.files, (), [], keep)
    elif rank:
        rows = _rank(engine.files, previous.files, _deleted(engine, previous), keep)
    else:
        rows = _follow(engine, previous)
    findings, marked = _findings(engine, previous) if keep else ((), MappingProxyType({}))
    return Snapshot(
        events=engine.counts.events, lost_events=engine.counts.lost_events,
        injections_fired=MappingProxyType(dict(engine.injections_fired)),
        processes=tuple(_process_row(info) for info in engine.processes.values()),
        files=tuple(rows), files_reported=files_reported, findings=findings, marked=marked,
        moves_seen=engine.move_count, finding_count=len(engine.findings))


def _file_row(state, seen: FileRow | None) -> FileRow:
    latencies = state.sync_latencies_us
    if seen is not None and seen.timed_syncs == len(latencies):      # none since: no sort again
        p50, most = seen.sync_p50_us, seen.sync_max_us
    elif latencies:
        p50, most = sorted(latencies)[(len(latencies) - 1) // 2], max(latencies)
    else:
        p50 = most = None
    return FileRow(state.serial, state.path, file_state(state), state.renamed_from, state.writes, state.dirty_bytes,
                   state.last_sync_at, bool(state.last_sync_index), len(latencies), p50, most)


def _moved(engine, previous: Snapshot) -> dict:
    """serial -> state, for the files that left their path since previous (each one's latest move)."""
    since = engine.move_count - previous.moves_seen
    if not since:
        return {}
    recent = engine.recent_moves
    return {state.serial: state for state in islice(recent, max(len(recent) - since, 0), None)}


def _follow(engine, previous: Snapshot) -> list[FileRow]:
    """previous's rows now: each found at its path, or where the engine's latest moves took it."""
    files = engine.files
    moved = _moved(engine, previous)
    rows = []
    for row in previous.files:
        if row.state == "deleted":
            rows.append(row)
            continue
        state = moved.get(row.serial)
        if state is not None:
            current = files.get(state.path)
            if current is not None and current.serial == row.serial:
                state = current         # settled or revived since it moved: the same file
            # else unlinked (deleted) or renamed over: as it was when it left
        else:
            state = files.get(row.path)
            if state is None or state.serial != row.serial:   # left before previous, or beyond MOVES_KEPT
                rows.append(row)
                continue
        rows.append(_file_row(state, row))
    return rows


def _deleted(engine, previous: Snapshot) -> list[FileRow]:
    """previous's rows whose files have been unlinked, as they were then: a ranking keeps them."""
    moved = _moved(engine, previous)
    deleted = []
    for row in previous.files:
        if row.state != "deleted":
            state = moved.get(row.serial)
            if state is None or not state.unlinked:
                continue
            row = _file_row(state, row)
        deleted.append(row)
    return deleted


def _rank(files: dict, shown: tuple[FileRow, ...], deleted: list[FileRow], keep: int) -> list[FileRow]:
    """The keep busiest files (most writes, then most unsynced) and deleted rows, in one pass over
    the files; shown: the rows before, whose latency figures need no sort again if unchanged."""
    candidates = [state for state in files.values()
                  if state.in_scope and not state.is_dir and (state.writes or state.syncs or state.is_dirty)]
    candidates.extend(deleted)
    ranked = heapq.nlargest(keep, candidates, key=lambda s: (s.writes, s.dirty_bytes))
    seen = {row.serial: row for row in shown}
    return [s if s.__class__ is FileRow else _file_row(s, seen.get(s.serial)) for s in ranked]


def _process_row(info) -> ProcessRow:
    runtime = info.runtime or {}
    io = info.io
    return ProcessRow(info.pid, tuple(info.argv) if info.argv else None, info.exe, runtime.get("name"),
                      runtime.get("version"), info.syscalls, io.writes, io.fsync + io.fdatasync, info.exited,
                      info.exit_code, info.exit_signal)


def _finding_row(finding) -> FindingRow:
    return FindingRow(finding.rule, finding.severity, finding.message, finding.count,
                      finding.path, finding.target_path, finding.pid)


def _findings(engine, previous: Snapshot | None) -> tuple[tuple[FindingRow, ...], Mapping[str, str]]:
    """Rows for the findings, the previous ones kept where their count has not changed
    (findings are only added and counted again, never removed or reordered)."""
    found = engine.findings
    before = previous.findings if previous is not None else ()
    rows = tuple(before[index] if index < len(before) and before[index].count == count
                 else _finding_row(found[index]) for index, count in enumerate(found.counts()))
    if previous is not None and len(before) == len(rows):
        return rows, previous.marked
    marked = dict(previous.marked) if previous is not None else {}
    for finding in rows[len(before):]:
        for path in (finding.path, finding.target_path):
            current = marked.get(path)
            if path and (current is None or SEVERITY_RANK[finding.severity] < SEVERITY_RANK[current]):
                marked[path] = finding.severity
    return rows, MappingProxyType(marked)
