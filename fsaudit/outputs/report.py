"""The report document (schema fsaudit.report/1) built from an engine: what every
format renders (outputs.registry).

Its `findings`, `suppressed_findings` and `files` are Listings: read again from the
engine (whose findings are mostly on disk past a few thousand: fsaudit.analysis.findings)
each time they are iterated, a dict at a time, so that a report of many findings or
files is never whole in memory; the JSON output streams them. The formats that show
groups take a bounded number of each group's findings (findings_by_group)."""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import islice
from operator import attrgetter

from ..analysis.grouping import FRAME_LOCATION, own_frame

SCHEMA = "fsaudit.report/1"
SEVERITY_ORDER = ("error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITY_ORDER)}
FINDING_KEYS = ("rule", "name", "severity", "pid", "tid", "path", "target_path", "message",
                "evidence", "runtime", "stack", "fix", "notes", "count", "role", "group")
EXAMPLES = 3            # paths a group shows before "N more" (its `paths` lists them all)
# A group's findings that the formats which list them (SARIF, JUnit, HTML) hold at most;
# the JSON report has every one.
FINDINGS_PER_GROUP = 100


class Listing:
    """A list of the report's that is made again, a dict at a time, each time it is
    iterated: iterate it, take its len, compare it with a list; indexing reads it
    up to the item."""

    def __init__(self, items: Callable[[], Iterator[dict]], length: int) -> None:
        self._items, self._length = items, length

    def __iter__(self) -> Iterator[dict]:
        return self._items()

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index):
        if isinstance(index, int) and 0 <= index < self._length:
            return next(islice(self._items(), index, None))
        return list(self)[index]

    def __eq__(self, other) -> bool:
        if isinstance(other, (Listing, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"Listing({list(self)!r})"


def _weighted_median(counter: Counter) -> int | None:
    total = sum(counter.values())
    if not total:
        return None
    seen = 0
    for value in sorted(counter):
        seen += counter[value]
        if seen * 2 >= total:
            return value
    return None


def _median(values: list) -> int | None:
    return sorted(values)[(len(values) - 1) // 2] if values else None


def _exit(code, signal) -> dict:
    return {"code": code, "signal": signal}


def _process(info) -> dict:
    io = info.io
    return {
        "pid": info.pid, "ppid": info.ppid, "exe": info.exe, "argv": info.argv or [],
        "runtime": info.runtime,
        "exit": _exit(info.exit_code, info.exit_signal) if info.exited else None,
        "exec_at": info.exec_at,
        "io": {
            "writes": io.writes, "bytes_written": io.bytes_written,
            # Write runs are folded in the kernel into calls, bytes and the largest call:
            # max is exact, p50 exact for uniform runs (see transitions.run_call_sizes).
            "write_size_p50": _weighted_median(io.write_sizes),
            "write_size_max": max(io.write_sizes) if io.write_sizes else None,
            "fsync": io.fsync, "fdatasync": io.fdatasync, "sync_file_range": io.sync_file_range,
            "o_sync_writes": io.o_sync_writes, "o_direct_writes": io.o_direct_writes,
            "dir_syncs": io.dir_syncs, "renames": io.renames, "links": io.links,
            "fsync_latency_p50_us": _median(io.fsync_latencies_us),
            "fsync_latency_max_us": max(io.fsync_latencies_us) if io.fsync_latencies_us else None,
        },
    }


def _group(group) -> dict:
    return {"id": group.id, "rule": group.rule, "name": group.name, "severity": group.severity,
            "count": group.count, "files": len(group.paths), "paths": group.paths,
            "examples": group.paths[:EXAMPLES], "call_site": group.call_site, "pattern": group.pattern,
            "exe": group.exe, "message": group.message, "fix": group.fix, "notes": group.notes}


def _file(state) -> dict:
    return {"path": state.path, "role": state.role, "writes": state.writes, "bytes_written": state.bytes_written,
            "syncs": state.syncs, "dirty_bytes_at_end": state.dirty_bytes, "last_sync_at": state.last_sync_at}


def _finding(finding) -> dict:
    return {key: getattr(finding, key) for key in FINDING_KEYS}


def build_report(engine, *, mode: str, target: dict, started_at: str, duration_s: float,
                 tool_version: str, warnings: list[str] = (), incomplete: list[str] = (),
                 cwd: str | None = None, source_root: str | None = None,
                 timeline: dict | None = None) -> dict:
    """The JSON report of a finished engine. Missing target fields come from the root process.

    warnings: what fsaudit could not see or do; incomplete: why events may be
    missing besides lost ones (each makes the report incomplete); cwd: the
    directory fsaudit ran in, which the summaries print paths relative to;
    source_root: the checkout whose files code-scanning outputs name relative
    to it (SARIF, GitHub annotations).
    timeline: the digest of fsaudit.analysis.timeline, when a format that draws
    it was asked for (the report then has a `timeline` section)."""
    root = engine.processes.get(engine.root_pid)
    target = dict(target)
    if target.get("pid") is None:
        target["pid"] = engine.root_pid
    if not target.get("argv") and root is not None:
        target["argv"] = root.argv or []
    if not target.get("exit"):
        target["exit"] = engine.root_exit
    # The files' states by path, each made a dict as it is read (a list of dicts was the
    # peak of a replay of 60 000 files written: 11 MB above the engine's state at the end).
    files = sorted((s for s in engine.files.values() if s.in_scope and not s.is_dir and (s.writes or s.syncs)),
                   key=attrgetter("path"))
    found = engine.findings
    reasons = {group.id: suppression.reason for group, suppression in engine.suppressed_groups}
    summary = Counter()
    for group in engine.groups:
        summary[group.severity] += group.count
    lost = engine.counts.lost_events
    incomplete = ([f"{lost} events were lost"] if lost else []) + list(incomplete)
    config = engine.config
    report = {
        "schema": SCHEMA,
        "tool": {"name": "fsaudit", "version": tool_version},
        "mode": mode,
        "target": target,
        "cwd": cwd,
        "source_root": source_root,
        "help_uri": config.help_uri,
        "started_at": started_at,
        "duration_s": duration_s,
        "complete": not incomplete,
        "incomplete": incomplete,
        "warnings": list(warnings),
        "counts": {"events": engine.counts.events, "lost_events": lost,
                   "processes": len(engine.processes), "files": len(files)},
        "config": {"path": config.path, "suppressed": [
            {"rule": s.rule, "path": s.path, "reason": s.reason, "hidden": hidden}
            for s, hidden in zip(config.suppressions, engine.hidden_by_suppression())]},
        # Files the tree changed that a role left out by default, by role; --include brings them back.
        "scope": {"excluded": {role: engine.roles.left_out[role] for role in sorted(engine.roles.excluded)},
                  "included": sorted(config.include_roles)},
        "processes": [_process(info) for info in engine.images if info.listed],
        "files": Listing(lambda: map(_file, files), len(files)),
        "findings": Listing(lambda: map(_finding, found.ordered()), len(found)),
        "groups": [_group(group) for group in engine.groups],
        # What suppressions hid, for the outputs that show it as suppressed (SARIF).
        "suppressed_findings": Listing(lambda: ({**_finding(f), "reason": reasons[f.group]}
                                                for f in found.ordered(hidden=True)),
                                       sum(group.count for group, _suppression in engine.suppressed_groups)),
        "suppressed_groups": [{**_group(group), "reason": suppression.reason, "suppression": suppression.path}
                              for group, suppression in engine.suppressed_groups],
        "summary": {name: summary.get(name, 0) for name in SEVERITY_ORDER},
    }
    if timeline is not None:
        report["timeline"] = timeline
    return report


def exit_status(report: dict, fail_on: str) -> int | None:
    """1 when a finding is at or above fail_on ("never" disables), else None."""
    limit = SEVERITY_RANK.get(fail_on)
    if limit is None:
        return None
    return 1 if any(report["summary"][name] for name in SEVERITY_ORDER[:limit + 1]) else None


def code_frame(stack: list) -> str | None:
    """The program's own frame (fsaudit.analysis.grouping.own_frame), else the
    innermost frame that names a file and line."""
    return own_frame(stack) or next((frame for frame in stack if FRAME_LOCATION.match(frame)), None)


def findings_by_group(report: dict, key: str = "findings", limit: int = FINDINGS_PER_GROUP) -> dict[str, list[dict]]:
    """The first `limit` findings of each group (in the report's order: by path, then pid),
    by group id (key="suppressed_findings": each suppressed group's); the group's `count`
    says how many it has in all."""
    members: dict[str, list[dict]] = {}
    for finding in report[key]:
        kept = members.setdefault(finding["group"], [])
        if len(kept) < limit:
            kept.append(finding)
    return members


def source_relative(path: str, root: str | None) -> str | None:
    """path relative to the source root ("." for the root itself), when it is under it, or
    relative already (a frame's file as the compiler recorded it); None for a path elsewhere.
    Normalised first: a script run as `python3 ../app.py` from /repo/sub names /repo/sub/../app.py."""
    if not path.startswith("/"):
        return path
    if root is None:
        return None
    path = posixpath.normpath(path)
    if path == root:
        return "."
    prefix = root.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else None


def group_site(group: dict, members: list[dict]) -> str | None:
    """Where a group's call was made: its call site, or for a group of one finding
    whose stack names no code of the program's own, the frame its stack does name."""
    if group["call_site"] or len(members) != 1 or not members[0]["stack"]:
        return group["call_site"]
    stack = members[0]["stack"]
    return code_frame(stack) or stack[0]
