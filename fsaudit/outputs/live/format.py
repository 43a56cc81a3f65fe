"""The dashboard's and the progress line's words and numbers: sizes, rates, ages, paths,
and the fixed-width grid the panels are drawn with."""

from __future__ import annotations

import os
import signal

from rich.text import Text


def format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def format_rate(per_s: float) -> str:
    if per_s < 10:
        return f"{per_s:.1f}" if per_s else "0"
    if per_s < 10_000:
        return f"{per_s:.0f}"
    if per_s < 10_000_000:
        return f"{per_s / 1000:.0f}k"
    return f"{per_s / 1e6:.0f}M"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"


def format_age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def format_latency(us: int) -> str:
    if us < 1000:
        return f"{us} µs"
    if us < 1_000_000:
        return f"{us / 1000:.1f} ms"
    return f"{us / 1e6:.1f} s"


def shorten_path(path: str, width: int, cwd: str | None = None) -> str:
    """path in at most width characters: relative to cwd when under it, then
    leading directories elided ("…/dir/name"), then the name's start."""
    if cwd and cwd != "/" and path.startswith(os.path.join(cwd, "")):
        path = path[len(cwd) + 1:]
    if len(path) <= width:
        return path
    parts = path.split("/")
    tail = parts[-1]
    for part in reversed(parts[:-1]):
        if len(f"…/{part}/{tail}") > width:
            break
        tail = f"{part}/{tail}"
    short = f"…/{tail}"
    if len(short) <= width:
        return short
    return "…" + parts[-1][len(parts[-1]) - width + 1:] if width > 1 else "…"


def exit_text(info) -> Text:
    """How a process (a ProcessRow) stands: running, its exit code or the signal that ended it."""
    if not info.exited:
        return Text("running", style="green")
    if info.exit_signal:
        try:
            name = signal.Signals(info.exit_signal).name
        except ValueError:
            name = f"signal {info.exit_signal}"
        return Text(name, style="red")
    return Text(f"exit {info.exit_code}", style="" if info.exit_code == 0 else "red")


def scope_text(config) -> str:
    if not config.include and not config.exclude:
        return "all files"
    text = " ".join(config.include) if config.include else "all files"
    return text + (" except " + " ".join(config.exclude) if config.exclude else "")


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


def grid(columns: list[tuple[str, int | None, bool]], rows: list[list], width: int, header: bool = True) -> Text:
    """rows in columns of (header, width, right-aligned) two spaces apart, one Text line each; the
    column of width None takes what the others leave. Unlike rich's Table, which measures every
    cell at every redraw (eight times the cost for the Files panel), the widths are given."""
    rest = width - sum(w for _, w, _ in columns if w is not None) - 2 * (len(columns) - 1)
    widths = [max(rest, 1) if w is None else w for _, w, _ in columns]
    lines = [[Text(name, style="bold") for name, _, _ in columns]] if header else []
    out = []
    for cells in lines + rows:
        line = Text(no_wrap=True)
        for index, (cell, cell_width, (_, _, right)) in enumerate(zip(cells, widths, columns)):
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            text.truncate(cell_width, overflow="ellipsis")
            padding = " " * (cell_width - text.cell_len)
            line.append("  " if index else "")
            line.append_text(Text(padding) + text if right else text + Text(padding))
        out.append(line)
    return Text("\n", no_wrap=True).join(out)
