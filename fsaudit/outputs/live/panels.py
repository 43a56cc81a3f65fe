"""The dashboard's panels, drawn from a snapshot's rows (fsaudit.analysis.snapshot): processes,
files, findings."""

from __future__ import annotations

import os
from collections import Counter
from typing import NamedTuple

from rich.panel import Panel
from rich.text import Text

from ..printable import printable
from .format import exit_text, format_age, format_bytes, format_latency, format_rate, grid, shorten_path

FILE_ROWS = 500                  # the busiest files the Files panel ranks and scrolls through
WIDE = 100                       # narrower: no runtime column (Processes), no fsync latencies (Files)
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
FILTER_LABEL = {"info": "all", "warning": "warning+", "error": "error"}
STATE_STYLE = {"dirty": "yellow", "synced": "green", "renamed": "magenta", "deleted": "dim", "clean": ""}


class Folded(NamedTuple):
    """Exited processes without findings, as one line: how many, how they ended, their totals."""
    count: int
    endings: tuple               # (("exit 0", 78), ("exit 1", 2)): how many ended each way, most first
    syscalls: int
    writes: int
    syncs: int


def process_entries(infos, flagged: set) -> list:
    """The Processes panel's lines, from the ProcessRows in the order the engine met them: running
    processes first (oldest first), then the exited ones (busiest first). An exited process gets a
    line of its own when it is the first one traced (the command, or the one attach joined) or
    when it made a finding (flagged: their pids); the others, when there are several, are folded
    into one last line (a Folded), so that short-lived children do not fill the panel."""
    first = infos[0].pid if infos else None
    ordered = sorted(infos, key=lambda info: (info.exited, -info.syscalls if info.exited else info.pid))
    folded = [info for info in ordered if info.exited and info.pid != first and info.pid not in flagged]
    if len(folded) < 2:
        return ordered
    fold = Folded(len(folded), tuple(Counter(exit_text(info).plain for info in folded).most_common()),
                  *(sum(column) for column in zip(*((i.syscalls, i.writes, i.syncs) for i in folded))))
    folded_pids = {info.pid for info in folded}
    return [info for info in ordered if info.pid not in folded_pids] + [fold]


def process_panel(entries: list, rates: dict, known_argv: dict, rows: int, width: int, totals: bool = False) -> Panel:
    """entries: process_entries(). Rates while tracing; at the end (totals) the counts, as rates
    of a finished process are 0."""
    wide = width >= WIDE
    columns = [("pid", 7, True), ("command", None, False)]
    if wide:
        columns.append(("runtime", 14, False))
    columns += [(name if totals else f"{name}/s", 10, True) for name in ("syscalls", "writes", "fsyncs")]
    columns.append(("status", 9, False))
    zero = (0.0, 0.0, 0.0)
    cells = []
    running = exited = 0
    for entry in entries:
        if isinstance(entry, Folded):
            exited += entry.count
        elif entry.exited:
            exited += 1
        else:
            running += 1
    for entry in entries[:rows]:
        if isinstance(entry, Folded):
            # One way they all ended goes in the status column; else the command's says each.
            alike = len(entry.endings) == 1
            row = ["", Text(f"{entry.count:,} exited" + ("" if alike else " (" + ", ".join(
                f"{n:,} {ending}" for ending, n in entry.endings) + ")"), style="dim")]
            if wide:
                row.append("")
            # Exited: no rate.
            row.extend(f"{n:,}" if totals else format_rate(0) for n in (entry.syscalls, entry.writes, entry.syncs))
            cells.append([*row, entry.endings[0][0] if alike else ""])
            continue
        argv = entry.argv or known_argv.get(entry.pid)
        row = [str(entry.pid), printable(" ".join(argv) if argv else (entry.exe or "?"))]
        if wide:
            row.append(printable(" ".join(filter(None, (entry.runtime_name, entry.runtime_version)))))
        if totals:
            row.extend(f"{n:,}" for n in (entry.syscalls, entry.writes, entry.syncs))
        else:
            row.extend(format_rate(r) for r in (zero if entry.exited else rates.get(entry.pid, zero)))
        cells.append([*row, exit_text(entry)])
    title = f"Processes ({running} running, {exited} exited"
    if len(entries) > rows:
        title += f", {rows} lines of {len(entries)} shown"
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


def output_panel(lines: list[str]) -> Panel:
    """The latest lines of the command's output (printable already), one row each."""
    if lines:
        body = Text("\n").join(Text(line) for line in lines)
    else:
        body = Text("nothing yet", style="dim")
    body.no_wrap, body.overflow = True, "ellipsis"
    return Panel(body, title="Output (latest lines; o hides)", title_align="left")


def help_panel(keys: list[tuple[str, str]], width: int) -> Panel:
    """The keys and what they do, in place of the panels until `?` again."""
    key_width = max(len(key) for key, _ in keys)
    return Panel(grid([("key", key_width, False), ("", None, False)], [list(pair) for pair in keys], width - 4,
                      header=False), title="Keys (? closes)", title_align="left")
