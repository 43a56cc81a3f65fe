"""fsaudit compare REPORT.json...: one row per report, side by side, to compare runtimes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import typer

from ..outputs.compare import render_markdown, render_text, row
from ..outputs.report import SCHEMA
from .common import EXIT_USAGE, fail


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
