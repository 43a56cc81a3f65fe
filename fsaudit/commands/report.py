"""fsaudit report EVENTS.jsonl: analyse a recorded event log again, offline."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import api
from . import common


def command(
    log: Path = typer.Argument(..., help="An event log written by --events."),
    json_path: Optional[str] = common.JsonOpt, events: Optional[str] = common.EventsOpt,
    sarif: Optional[str] = common.SarifOpt, junit: Optional[str] = common.JunitOpt,
    html: Optional[str] = common.HtmlOpt,
    output: Optional[str] = common.ReportOutputOpt, format: common.SummaryFormat = common.FormatOpt, fail_on: common.FailOn = common.FailOnOpt,
    statistics: bool = common.StatisticsOpt,
    path: List[str] = common.PathOpt, exclude: List[str] = common.ExcludeOpt,
    include: List[str] = common.IncludeOpt,
    config: Optional[Path] = common.ConfigOpt, source_root: Optional[Path] = common.SourceRootOpt,
) -> None:
    """Replay EVENTS.jsonl through the same engine as a live run (no root needed)."""
    options = common.output_options(json_path, events, sarif, junit, output, format, fail_on, path, exclude, config,
                                    statistics, source_root, html, include)
    common.exit_with(api.analyse_log, log, options)
