"""The dashboard's panels, drawn from what they are given: processes, files, findings."""

from __future__ import annotations

import os

from rich.panel import Panel
from rich.text import Text

from ..printable import printable
from .format import (exit_text, file_state, format_age, format_bytes, format_latency, format_rate, grid,
                     shorten_path)

FILE_ROWS = 500                  # the busiest files the Files panel ranks and scrolls through
WIDE = 100                       # narrower: no runtime column (Processes), no fsync latencies (Files)
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
FILTER_LABEL = {"info": "all", "warning": "warning+", "error": "error"}
STATE_STYLE = {"dirty": "yellow", "synced": "green", "renamed": "magenta", "deleted": "dim", "clean": ""}


def process_panel(infos, rates: dict, known_argv: dict, rows: int, width: int, totals: bool = False) -> Panel:
    """Rates while tracing; at the end (totals) the counts, as rates of a finished process are 0."""
    wide = width >= WIDE
    # Running first (oldest first), then the exited (busiest first).
    infos = sorted(infos, key=lambda info: (info.exited, -info.syscalls if info.exited else info.pid))
    running = sum(1 for info in infos if not info.exited)
    columns = [("pid", 7, True), ("command", None, False)]
    if wide:
        columns.append(("runtime", 14, False))
    columns += [(name if totals else f"{name}/s", 10, True) for name in ("syscalls", "writes", "fsyncs")]
    columns.append(("status", 9, False))
    zero = (0.0, 0.0, 0.0)
    cells = []
    for info in infos[:rows]:
        argv = info.argv or known_argv.get(info.pid)
        row = [str(info.pid), printable(" ".join(argv) if argv else (info.exe or "?"))]
        if wide:
            runtime = info.runtime or {}
            row.append(printable(" ".join(filter(None, (runtime.get("name"), runtime.get("version"))))))
        if totals:
            row.extend(f"{n:,}" for n in (info.syscalls, info.io.writes, info.io.fsync + info.io.fdatasync))
        else:
            row.extend(format_rate(r) for r in (zero if info.exited else rates.get(info.pid, zero)))
        cells.append([*row, exit_text(info)])
    title = f"Processes ({running} running, {len(infos) - running} exited"
    if len(infos) > rows:
        title += f", {rows} shown"
    return Panel(grid(columns, cells, width - 4), title=title + ")", title_align="left")


def files_panel(ranked: list, scroll: int, rows: int, width: int, marked: dict, now_t: float,
                cwd: str) -> Panel:
    """rows of the ranked files from the scroll-th; marked: path -> the worst severity of its findings;
    now_t: now on the events' clock, for the age of the last sync."""
    wide = width >= WIDE
    columns = [("state", 7, False), ("unsynced", 10, True), ("writes", 7, True), ("last sync", 10, True)]
    if wide:
        columns.append(("fsync p50/max", 15, True))
    columns.append(("!", 1, False))
    # The path takes what the other columns and the gaps leave inside the panel's border.
    path_width = max(width - 4 - sum(w for _, w, _ in columns) - 2 * len(columns), 8)
    columns.insert(0, ("path", path_width, False))
    cells = []
    for state in ranked[scroll:scroll + rows]:
        word = file_state(state)
        path = printable(state.path)
        label = shorten_path(path, path_width, cwd)
        if state.renamed_from is not None:
            old = state.renamed_from
            origin = os.path.basename(old) if os.path.dirname(old) == os.path.dirname(state.path) else old
            arrow = f" ← {shorten_path(printable(origin), path_width // 2, cwd)}"
            label = shorten_path(path, max(path_width - len(arrow), 8), cwd) + arrow
        last_sync = (format_age(max(now_t - state.last_sync_at, 0.0)) if state.last_sync_at is not None
                     else "never" if not state.last_sync_index else "")
        row = [Text(label, style="dim" if word == "deleted" else ""), Text(word, style=STATE_STYLE[word]),
               Text(format_bytes(state.dirty_bytes), style="yellow" if state.dirty_bytes else "dim"),
               f"{state.writes:,}", last_sync]
        if wide:
            latencies = state.sync_latencies_us
            row.append(f"{format_latency(sorted(latencies)[(len(latencies) - 1) // 2])} / "
                       f"{format_latency(max(latencies))}" if latencies else "")
        severity = marked.get(state.path)
        row.append(Text("!", style=SEVERITY_STYLE[severity]) if severity else "")
        cells.append(row)
    title = f"Files ({len(ranked)}{'+' if len(ranked) == FILE_ROWS else ''}, busiest first"
    if len(ranked) > rows:
        title += f", {scroll + 1}-{min(scroll + rows, len(ranked))} shown"
    return Panel(grid(columns, cells, width - 4), title=title + ")", title_align="left")


def finding_paths(findings) -> dict:
    """path -> the worst severity of the findings about it (their path or rename target)."""
    marked: dict = {}
    for finding in findings:
        for path in (finding.path, finding.target_path):
            current = marked.get(path)
            if path and (current is None or SEVERITY_RANK[finding.severity] < SEVERITY_RANK[current]):
                marked[path] = finding.severity
    return marked


def findings_panel(shown: list, total: int, min_severity: str, rows: int, width: int) -> Panel:
    """The latest of the findings shown (those at min_severity or worse) that fit, of total."""
    columns = [("code", 5, False), ("severity", 8, False), ("message", None, False)]
    cells = [[finding.rule, Text(finding.severity, style=SEVERITY_STYLE[finding.severity]),
              printable(finding.message) + (f" (x{finding.count})" if finding.count > 1 else "")]
             for finding in shown[-rows:]]      # the latest that fit, in the order raised
    title = f"Findings ({len(shown)}" + (f" of {total}" if len(shown) != total else "")
    title += f", showing {FILTER_LABEL[min_severity]}"
    if len(shown) > rows:
        title += f", latest {rows} shown"
    return Panel(grid(columns, cells, width - 4, header=False), title=title + ")", title_align="left")
