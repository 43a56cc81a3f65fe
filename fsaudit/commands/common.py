"""Options shared by run/attach/report, and the one-line error exits."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal, NoReturn, Optional

import typer

from .. import api
from ..api import EXIT_CANNOT_TRACE, EXIT_USAGE  # noqa: F401  (the other commands exit with these)
from ..outputs.registry import FORMATS, SUMMARY_FORMATS
from ..session import SEVERITIES

# The file options of the formats (outputs.registry) that have one: format name -> option.
FILE_OPTS = {fmt.name: typer.Option(None, fmt.option, metavar="PATH", help=fmt.help)
             for fmt in FORMATS.values() if fmt.option}
JsonOpt, SarifOpt, JunitOpt, HtmlOpt = FILE_OPTS["json"], FILE_OPTS["sarif"], FILE_OPTS["junit"], FILE_OPTS["html"]
EventsOpt = typer.Option(None, "--events", metavar="PATH",
                         help="Write every event as JSON Lines here (- for stdout).")
OutputOpt = typer.Option(None, "-o", "--output", metavar="PATH",
                         help="Write the summary here instead of stderr (- for stdout).")
ReportOutputOpt = typer.Option(None, "-o", "--output", metavar="PATH",
                               help="Write the summary here instead of stdout.")
# Choices as Literal types, so that --help lists them and typer rejects others.
SummaryFormat = Literal[SUMMARY_FORMATS]
FailOn = Literal[SEVERITIES]
FormatOpt = typer.Option("text", "--format", help="The summary's form.")
StatisticsOpt = typer.Option(False, "--statistics", help="The summary counts findings per rule and per group "
                             "instead of listing them.")
FailOnOpt = typer.Option("error", "--fail-on", help="Lowest severity that makes the exit status 1.")
PathOpt = typer.Option([], "--path", help="Only files matching this glob are in scope (repeatable; "
                                          "gitignore-style, relative to the current directory, or absolute).")
ExcludeOpt = typer.Option([], "--exclude", help="Files matching this glob are out of scope (repeatable; "
                                                "gitignore-style, relative to the current directory, or absolute).")
IncludeOpt = typer.Option([], "--include", metavar="ROLES",
                          help="Bring files left out of scope by default back in: volatile (on tmpfs, ramfs, "
                               "devtmpfs), stdio (the command's inherited stdin/stdout/stderr targets), cache "
                               "(comma-separated or repeated).")
ConfigOpt = typer.Option(None, "--config", help="TOML configuration (default: the nearest fsaudit.toml, or "
                                                "pyproject.toml with \\[tool.fsaudit], in the current directory or "
                                                "its parents, up to a repository's root; docs/config.md).")
LiveOpt = typer.Option(None, "--live/--no-live",
                       help="The live terminal dashboard (default: on when stdout is a terminal).")
StacksOpt = typer.Option(None, "--stacks/--no-stacks",
                         help="Capture the user stack of each call and name the code behind each finding "
                              "(default: on with --sarif, which locates results at that line).")
SourceRootOpt = typer.Option(None, "--source-root", metavar="DIR",
                             help="The checkout SARIF and --format github name files relative to (default: the "
                                  "repository that holds the current directory, else the current directory).")


def fail(message: str, code: int) -> "typer.Exit":
    typer.echo(f"fsaudit: {message}", err=True)
    return typer.Exit(code)


def output_options(json_path: Optional[str], events: Optional[str], sarif: Optional[str], junit: Optional[str],
                   output: Optional[str], format: str, fail_on: str, path: list[str], exclude: list[str],
                   config: Optional[Path], statistics: bool, source_root: Optional[Path],
                   html: Optional[str] = None, include: list[str] = ()) -> api.OutputOptions:
    """The outputs as the options name them; fsaudit.api checks them."""
    files = {name: path for name, path in (("json", json_path), ("sarif", sarif), ("junit", junit), ("html", html))
             if path is not None}
    roles = [role.strip() for value in include for role in value.split(",") if role.strip()]
    return api.OutputOptions(events_path=events, files=files, summary_path=output, format=format, fail_on=fail_on,
                             paths=path, excludes=exclude, config_path=config, statistics=statistics,
                             source_root=None if source_root is None else str(source_root), include=roles)


def stacks_wanted(stacks: Optional[bool], sarif: Optional[str]) -> bool:
    """--stacks or --no-stacks as given; unsaid, on when SARIF is written: code-scanning
    views place a result at the line of code, which only a stack names."""
    return sarif is not None if stacks is None else stacks


def exit_with(entry: Callable[..., api.Result], *args, **kwargs) -> NoReturn:
    """Call one fsaudit.api entry point and exit with its status; an api.Error
    becomes one line on stderr and its exit code."""
    try:
        result = entry(*args, **kwargs)
    except api.Error as exc:
        raise fail(str(exc), exc.exit_code) from None
    raise typer.Exit(result.status)
