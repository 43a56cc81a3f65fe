"""fsaudit attach PID: trace a running process, the processes it has started, and those it starts."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import api
from . import common


def command(
    pid: int = typer.Argument(..., help="The process to trace."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Detach after SECONDS."),
    json_path: Optional[str] = common.JsonOpt, events: Optional[str] = common.EventsOpt,
    sarif: Optional[str] = common.SarifOpt, junit: Optional[str] = common.JunitOpt,
    html: Optional[str] = common.HtmlOpt,
    output: Optional[str] = common.OutputOpt, format: common.SummaryFormat = common.FormatOpt, fail_on: common.FailOn = common.FailOnOpt,
    statistics: bool = common.StatisticsOpt,
    path: List[str] = common.PathOpt, exclude: List[str] = common.ExcludeOpt,
    include: List[str] = common.IncludeOpt,
    config: Optional[Path] = common.ConfigOpt, live: Optional[bool] = common.LiveOpt,
    stacks: Optional[bool] = common.StacksOpt, source_root: Optional[Path] = common.SourceRootOpt,
) -> None:
    """Trace PID and its descendants, running and new, until they exit, Ctrl-C, SIGTERM, SIGHUP or --duration."""

    def attached(descendants: int) -> None:
        typer.echo(f"fsaudit: attached to pid {pid} and {descendants} existing "
                   f"descendant{'' if descendants == 1 else 's'}", err=True)

    options = common.output_options(json_path, events, sarif, junit, output, format, fail_on, path, exclude, config,
                                    statistics, source_root, html, include)
    common.exit_with(api.attach, pid, options, duration=duration, stacks=common.stacks_wanted(stacks, sarif),
                     view=api.terminal_view(live), on_attached=attached)
