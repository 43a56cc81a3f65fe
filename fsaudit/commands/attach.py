"""fsaudit attach PID (or -p PID...): trace running processes, the processes they have started, and those they start."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import api
from . import common


def command(
    pid: Optional[int] = typer.Argument(None, metavar="PID", help="The process to trace.", show_default=False),
    pids: List[int] = typer.Option([], "-p", "--pid", metavar="PID", show_default=False,
                                   help="A process to trace as well (repeatable): several processes at once."),
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
    """Trace PID (and each -p PID) and their descendants, running and new, until they exit, Ctrl-C, SIGTERM, SIGHUP or --duration."""
    targets = list(dict.fromkeys(([] if pid is None else [pid]) + pids))

    def attached(descendants: int) -> None:
        named = f"pid {targets[0]}" if len(targets) == 1 else f"pids {', '.join(map(str, targets))}"
        typer.echo(f"fsaudit: attached to {named} and {descendants} existing "
                   f"descendant{'' if descendants == 1 else 's'}", err=True)

    options = common.output_options(json_path, events, sarif, junit, output, format, fail_on, path, exclude, config,
                                    statistics, source_root, html, include)
    common.exit_with(api.attach, targets, options, duration=duration, stacks=common.stacks_wanted(stacks, sarif),
                     view=api.terminal_view(live), on_attached=attached)
