"""fsaudit run -- COMMAND: trace a command and every process it starts."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import api
from . import common


def command(
    argv: List[str] = typer.Argument(..., metavar="-- COMMAND [ARGS...]", help="The command to trace."),
    user: Optional[str] = typer.Option(None, "--user", help="Run the command as USER, as a login would: USER's uid, "
                                       "gid and supplementary groups, and HOME, USER, LOGNAME and SHELL from its "
                                       "passwd entry (the tracer stays root)."),
    inject: List[str] = typer.Option([], "--inject", metavar="SYSCALL=ERRNO[@N|@N+][:path=GLOB]",
                                     help="Make the Nth call (default every call) of SYSCALL in the tree fail "
                                          "with ERRNO without running it (repeatable)."),
    json_path: Optional[str] = common.JsonOpt, events: Optional[str] = common.EventsOpt,
    sarif: Optional[str] = common.SarifOpt, junit: Optional[str] = common.JunitOpt,
    html: Optional[str] = common.HtmlOpt,
    output: Optional[str] = common.OutputOpt, format: common.SummaryFormat = common.FormatOpt, fail_on: common.FailOn = common.FailOnOpt,
    statistics: bool = common.StatisticsOpt,
    path: List[str] = common.PathOpt, exclude: List[str] = common.ExcludeOpt,
    include: List[str] = common.IncludeOpt,
    config: Optional[Path] = common.ConfigOpt, live: Optional[bool] = common.LiveOpt,
    stacks: Optional[bool] = common.StacksOpt, source_root: Optional[Path] = common.SourceRootOpt,
    keep_output: bool = typer.Option(False, "--keep-output",
                                     help="With the dashboard, keep the log of the command's output "
                                          "(/tmp/fsaudit-output-*.log, named at the end) even when the run "
                                          "succeeds; it is kept when fsaudit exits non-zero, removed when empty."),
) -> None:
    """Trace COMMAND and every process it starts; exit with its status unless findings say otherwise."""
    options = common.output_options(json_path, events, sarif, junit, output, format, fail_on, path, exclude, config,
                                    statistics, source_root, html, include)
    common.exit_with(api.trace_command, argv, options, user=user, inject=inject,
                     stacks=common.stacks_wanted(stacks, sarif), view=api.terminal_view(live, keep_output))
