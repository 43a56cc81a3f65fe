"""fsaudit compare REPORT.json...: one row per report, side by side, to compare runtimes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import typer

from ..outputs.report import SCHEMA
from .common import EXIT_USAGE, fail

COLUMNS = ("report", "runtime", "writes", "bytes", "size p50", "size max", "fsync", "fdatasync",
           "dir syncs", "move", "E/W/I", "findings")


def _main_process(report: dict) -> dict | None:
    """The process that wrote the most bytes to files in scope (the root on a tie):
    in a tree with a launcher or shell, the one whose runtime did the I/O."""
    processes = report["processes"]
    return max(processes, key=lambda p: p["io"]["bytes_written"]) if processes else None


def _move(io: dict) -> str:
    methods = [name for name, count in (("rename", io.get("renames", 0)), ("link", io.get("links", 0))) if count]
    return "+".join(methods) or "-"


def _value(value) -> str:
    return "-" if value is None else str(value)


def row(label: str, report: dict) -> list[str]:
    main = _main_process(report)
    io = main["io"] if main else {}
    runtime = main and main.get("runtime")
    summary = report["summary"]
    codes = sorted({f["rule"] for f in report["findings"]})
    return [label,
            " ".join(filter(None, (runtime["name"], runtime.get("version")))) if runtime else "-",
            _value(io.get("writes")), _value(io.get("bytes_written")),
            _value(io.get("write_size_p50")), _value(io.get("write_size_max")),
            _value(io.get("fsync")), _value(io.get("fdatasync")), _value(io.get("dir_syncs")), _move(io),
            f"{summary['error']}/{summary['warning']}/{summary['info']}",
            " ".join(codes) or "-"]


def render_text(rows: list[list[str]]) -> str:
    table = [list(COLUMNS)] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    numeric = {i for i, name in enumerate(COLUMNS) if name not in ("report", "runtime", "move", "findings")}
    lines = ["  ".join(cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                       for i, cell in enumerate(r)).rstrip() for r in table]
    return "\n".join(lines) + "\n"


def render_markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _load(path: Path) -> dict:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror}", EXIT_USAGE) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise fail(f"{path}: not a JSON report", EXIT_USAGE) from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise fail(f"{path}: not an fsaudit report (expected schema {SCHEMA})", EXIT_USAGE)
    return report


def command(
    reports: List[Path] = typer.Argument(..., help="Reports written by run/attach/report --json."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table."),
) -> None:
    """Compare reports side by side: for each, the runtime of the process that wrote the
    most, its writes and write sizes, syncs, how it moved files into place, and the findings."""
    rows = []
    for path in reports:
        try:
            rows.append(row(path.stem, _load(path)))
        except (KeyError, TypeError, AttributeError) as exc:
            raise fail(f"{path}: malformed report ({type(exc).__name__}: {exc})", EXIT_USAGE) from None
    typer.echo((render_markdown if markdown else render_text)(rows), nl=False)
