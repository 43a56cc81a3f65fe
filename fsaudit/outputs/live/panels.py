"""The dashboard's panels, drawn from a snapshot's rows (fsaudit.analysis.snapshot): processes,
files, findings."""

from __future__ import annotations

import os

from rich.panel import Panel
from rich.text import Text

from ..printable import printable
from .format import exit_text, format_age, format_bytes, format_latency, format_rate, grid, shorten_path

FILE_ROWS = 500                  # the busiest files the Files panel ranks and scrolls through
WIDE = 100                       # narrower: no runtime column (Processes), no fsync latencies (Files)
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
FILTER_LABEL = {"info": "all", "warning": "warning+", "error": "error"}
STATE_STYLE = {"dirty": "yellow", "synced": "green", "renamed": "magenta", "deleted": "dim", "clean": ""}


def process_panel(infos, rates: dict, known_argv: dict, rows: int, width: int, totals: bool = False) -> Panel:
    """infos: ProcessRows. Rates while tracing; at the end (totals) the counts, as rates of a
    finished process are 0."""
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
            row.append(printable(" ".join(filter(None, (info.runtime_name, info.runtime_version)))))
        if totals:
            row.extend(f"{n:,}" for n in (info.syscalls, info.writes, info.syncs))
        else:
            row.extend(format_rate(r) for r in (zero if info.exited else rates.get(info.pid, zero)))
        cells.append([*row, exit_text(info)])
    title = f"Processes ({running} running, {len(infos) - running} exited"
    if len(infos) > rows:
        title += f", {rows} shown"
    return Panel(grid(columns, cells, width - 4), title=title + ")", title_align="left")


def files_panel(ranked: list, scroll: int, rows: int, width: int, marked: dict, now_t: float,
                cwd: str) -> Panel:
    """rows of the ranked FileRows from the scroll-th; marked: path -> the worst severity of its
    findings; now_t: now on the events' clock, for the age of the last sync."""
    wide = width >= WIDE
    columns = [("state", 7, False), ("unsynced", 10, True), ("writes", 7, True), ("last sync", 10, True)]
    if wide:
        columns.append(("fsync p50/max", 15, True))
    columns.append(("!", 1, False))
    # The path takes what the other columns and the gaps leave inside the panel's border.
    path_width = max(width - 4 - sum(w for _, w, _ in columns) - 2 * len(columns), 8)
    columns.insert(0, ("path", path_width, False))
    cells = []
    for file in ranked[scroll:scroll + rows]:
        word = file.state
        path = printable(file.path)
        label = shorten_path(path, path_width, cwd)
        if file.renamed_from is not None:
            old = file.renamed_from
            origin = os.path.basename(old) if os.path.dirname(old) == os.path.dirname(file.path) else old
            arrow = f" ← {shorten_path(printable(origin), path_width // 2, cwd)}"
            label = shorten_path(path, max(path_width - len(arrow), 8), cwd) + arrow
        last_sync = (format_age(max(now_t - file.last_sync_at, 0.0)) if file.last_sync_at is not None
                     else "never" if not file.ever_synced else "")
        row = [Text(label, style="dim" if word == "deleted" else ""), Text(word, style=STATE_STYLE[word]),
               Text(format_bytes(file.dirty_bytes), style="yellow" if file.dirty_bytes else "dim"),
               f"{file.writes:,}", last_sync]
        if wide:
            row.append(f"{format_latency(file.sync_p50_us)} / {format_latency(file.sync_max_us)}"
                       if file.timed_syncs else "")
        severity = marked.get(file.path)
        row.append(Text("!", style=SEVERITY_STYLE[severity]) if severity else "")
        cells.append(row)
    title = f"Files ({len(ranked)}{'+' if len(ranked) == FILE_ROWS else ''}, busiest first"
    if len(ranked) > rows:
        title += f", {scroll + 1}-{min(scroll + rows, len(ranked))} shown"
    return Panel(grid(columns, cells, width - 4), title=title + ")", title_align="left")


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
