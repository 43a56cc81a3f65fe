"""The report document (schema fsaudit.report/1) built from an engine: what every
format renders (outputs.registry)."""

from __future__ import annotations

import re
from collections import Counter

SCHEMA = "fsaudit.report/1"
SEVERITY_ORDER = ("error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITY_ORDER)}
FINDING_KEYS = ("rule", "name", "severity", "pid", "tid", "path", "target_path", "message",
                "evidence", "runtime", "stack", "fix", "notes", "count", "role")


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
        "io": {
            "writes": io.writes, "bytes_written": io.bytes_written,
            # Write runs are folded in the kernel into calls, bytes and the largest call:
            # max is exact, p50 exact for uniform runs (see engine.run_call_sizes).
            "write_size_p50": _weighted_median(io.write_sizes),
            "write_size_max": max(io.write_sizes) if io.write_sizes else None,
            "fsync": io.fsync, "fdatasync": io.fdatasync, "sync_file_range": io.sync_file_range,
            "o_sync_writes": io.o_sync_writes, "o_direct_writes": io.o_direct_writes,
            "dir_syncs": io.dir_syncs, "renames": io.renames, "links": io.links,
            "fsync_latency_p50_us": _median(io.fsync_latencies_us),
            "fsync_latency_max_us": max(io.fsync_latencies_us) if io.fsync_latencies_us else None,
        },
    }


def build_report(engine, *, mode: str, target: dict, started_at: str, duration_s: float,
                 tool_version: str, warnings: list[str] = (), incomplete: list[str] = ()) -> dict:
    """The JSON report of a finished engine. Missing target fields come from the root process.

    warnings: what fsaudit could not see or do; incomplete: why events may be
    missing besides lost ones (each makes the report incomplete)."""
    root = engine.processes.get(engine.root_pid)
    target = dict(target)
    if target.get("pid") is None:
        target["pid"] = engine.root_pid
    if not target.get("argv") and root is not None:
        target["argv"] = root.argv or []
    if not target.get("exit"):
        target["exit"] = engine.root_exit
    files = [{"path": s.path, "role": s.role, "writes": s.writes, "bytes_written": s.bytes_written, "syncs": s.syncs,
              "dirty_bytes_at_end": s.dirty_bytes, "last_sync_at": s.last_sync_at}
             for s in engine.files.values() if s.in_scope and not s.is_dir and (s.writes or s.syncs)]
    findings = sorted(engine.findings, key=lambda f: (SEVERITY_RANK[f.severity], f.rule, f.path or "", f.pid))
    summary = Counter(f.severity for f in findings)
    lost = engine.counts.lost_events
    incomplete = ([f"{lost} events were lost"] if lost else []) + list(incomplete)
    config = engine.config
    return {
        "schema": SCHEMA,
        "tool": {"name": "fsaudit", "version": tool_version},
        "mode": mode,
        "target": target,
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
        "processes": [_process(info) for info in engine.processes.values()],
        "files": sorted(files, key=lambda f: f["path"]),
        "findings": [{key: getattr(f, key) for key in FINDING_KEYS} for f in findings],
        "summary": {name: summary.get(name, 0) for name in SEVERITY_ORDER},
    }


def exit_status(report: dict, fail_on: str) -> int | None:
    """1 when a finding is at or above fail_on ("never" disables), else None."""
    limit = SEVERITY_RANK.get(fail_on)
    if limit is None:
        return None
    return 1 if any(SEVERITY_RANK[f["severity"]] <= limit for f in report["findings"]) else None


# How a finding's stack frame names its source line; the text and SARIF formats both read it.
FRAME_LOCATION = re.compile(r"^(?P<function>.*) \((?P<file>.+):(?P<line>\d+)\)$")


# Where toolchains and system packages keep their sources (and Rust's std
# records its own): frames there are the runtime's, not the program's.
SYSTEM_SOURCES = ("/usr/", "/lib/", "/rustc/", "<")


def code_frame(stack: list) -> str | None:
    """The innermost frame that names a file and line outside the system's
    sources (the program's own code), else the innermost with a file and line."""
    located = [(frame, match["file"]) for frame in stack if (match := FRAME_LOCATION.match(frame))]
    return next((frame for frame, path in located if not path.startswith(SYSTEM_SOURCES)),
                located[0][0] if located else None)
