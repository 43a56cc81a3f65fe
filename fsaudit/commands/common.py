"""Options shared by run/attach/report, and the one-line error exits."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..analysis.config import ConfigError
from ..tracing.host import first_failure, run_checks
from ..outputs.registry import FORMATS, SUMMARY_FORMATS
from ..session import SEVERITIES, OutputOptions

EXIT_FINDINGS, EXIT_USAGE, EXIT_CANNOT_TRACE = 1, 2, 3

# The file options of the formats (outputs.registry) that have one: format name -> option.
FILE_OPTS = {fmt.name: typer.Option(None, fmt.option, metavar="PATH", help=fmt.help)
             for fmt in FORMATS.values() if fmt.option}
JsonOpt, SarifOpt, JunitOpt = FILE_OPTS["json"], FILE_OPTS["sarif"], FILE_OPTS["junit"]
EventsOpt = typer.Option(None, "--events", metavar="PATH",
                         help="Write every event as JSON Lines here (- for stdout).")
OutputOpt = typer.Option(None, "-o", "--output", metavar="PATH",
                         help="Write the summary here instead of stderr (- for stdout).")
ReportOutputOpt = typer.Option(None, "-o", "--output", metavar="PATH",
                               help="Write the summary here instead of stdout.")
FORMAT_CHOICES = " or ".join(SUMMARY_FORMATS)
FormatOpt = typer.Option("text", "--format", help=f"The summary's form: {FORMAT_CHOICES}.")
FailOnOpt = typer.Option("error", "--fail-on", help="Lowest severity that makes the exit status 1: error, warning, info, never.")
PathOpt = typer.Option([], "--path", help="Only files matching this glob are in scope (repeatable).")
ExcludeOpt = typer.Option([], "--exclude", help="Files matching this glob are out of scope (repeatable).")
ConfigOpt = typer.Option(None, "--config", help="TOML configuration (default: fsaudit.toml or [tool.fsaudit]).")
LiveOpt = typer.Option(None, "--live/--no-live",
                       help="The live terminal dashboard (default: on when stdout is a terminal).")
StacksOpt = typer.Option(False, "--stacks/--no-stacks",
                         help="Capture the user stack of each call and name the code behind each finding.")


def fail(message: str, code: int) -> "typer.Exit":
    typer.echo(f"fsaudit: {message}", err=True)
    return typer.Exit(code)


def output_options(json_path: Optional[str], events: Optional[str], sarif: Optional[str], junit: Optional[str],
                   output: Optional[str], format: str, fail_on: str, path: list[str], exclude: list[str],
                   config: Optional[Path]) -> OutputOptions:
    if format not in SUMMARY_FORMATS:
        raise fail(f"--format must be {FORMAT_CHOICES}, not {format!r}", EXIT_USAGE)
    if fail_on not in SEVERITIES:
        raise fail(f"--fail-on must be one of {', '.join(SEVERITIES)}, not {fail_on!r}", EXIT_USAGE)
    if config is not None and not config.is_file():
        raise fail(f"--config {config}: no such file", EXIT_USAGE)
    files = {name: path for name, path in (("json", json_path), ("sarif", sarif), ("junit", junit)) if path is not None}
    return OutputOptions(events_path=events, files=files, summary_path=output, format=format, fail_on=fail_on,
                         paths=path, excludes=exclude, config_path=config)


def start_session(options: OutputOptions, mode: str, header: dict):
    """The session, with every output already created: call it before the
    command starts or the tracer attaches, so that a bad path runs nothing."""
    from ..outputs.outputfile import OutputError
    from ..session import Session

    try:
        return Session(options, mode, header)
    except ConfigError as exc:
        raise fail(f"configuration: {exc}", EXIT_USAGE) from None
    except OutputError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def open_view(live: Optional[bool], session, cwd: str):
    """The dashboard or the progress line (fsaudit.live); --live without a terminal is a usage error."""
    from ..outputs.live import NoTerminal, open_view as open_live_view

    try:
        return open_live_view(live, session, cwd)
    except NoTerminal as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def require_tracing() -> None:
    failed = first_failure(run_checks())
    if failed:
        raise fail(f"cannot trace: {failed.line()}", EXIT_CANNOT_TRACE)


def tracer_sizes() -> dict[str, int]:
    """The tracer's buffers, from the environment: FSAUDIT_RINGBUF_PAGES, the
    kernel ring buffer in pages (a power of 2; larger absorbs longer bursts
    while fsaudit is off the CPU, tests shrink it to force losses), and
    FSAUDIT_BACKLOG_MIB, the records awaiting analysis that stay in memory
    before the rest go to a temporary file."""
    import os

    from ..tracing.tracer import DEFAULT_BACKLOG_MIB, DEFAULT_RINGBUF_PAGES

    pages = os.environ.get("FSAUDIT_RINGBUF_PAGES", "") or str(DEFAULT_RINGBUF_PAGES)
    if not pages.isdigit() or int(pages) < 1 or int(pages) & (int(pages) - 1):
        raise fail(f"FSAUDIT_RINGBUF_PAGES={pages}: must be a power of 2 (pages)", EXIT_USAGE)
    backlog = os.environ.get("FSAUDIT_BACKLOG_MIB", "") or str(DEFAULT_BACKLOG_MIB)
    if not backlog.isdigit():
        raise fail(f"FSAUDIT_BACKLOG_MIB={backlog}: must be a whole number of MiB", EXIT_USAGE)
    return {"ringbuf_pages": int(pages), "backlog_mib": int(backlog)}


def host_header() -> dict:
    import os
    import socket

    return {"host": socket.gethostname(), "kernel": os.uname().release}
