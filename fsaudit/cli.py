"""fsaudit command line: one module per subcommand under fsaudit/commands/."""

from __future__ import annotations

import contextlib
import sys

import typer
from typer.exceptions import TyperException

from . import DISTRIBUTION, __version__
from .commands import attach, compare, crash, doctor, report, rules, run
from .commands.common import EXIT_USAGE

app = typer.Typer(add_completion=False,
                  help="Find where a program's data would not survive a crash or power cut.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fsaudit {__version__} ({DISTRIBUTION})")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")) -> None:
    """Find where a program's data would not survive a crash or power cut."""


app.command("run", context_settings={"allow_interspersed_args": False})(run.command)
app.command("attach")(attach.command)
app.command("report")(report.command)
app.command("compare")(compare.command)
app.command("rules")(rules.command)
app.command("doctor")(doctor.command)
app.command("crash", context_settings={"allow_interspersed_args": False})(crash.command)


def main() -> None:
    # Paths that are not UTF-8 reach the text output as surrogate escapes:
    # write their original bytes back rather than fail.
    sys.stdout.reconfigure(errors="surrogateescape")
    if len(sys.argv) == 1:
        # No command is a usage error, as with ruff (and click): the help on
        # stderr, exit status 2; stdout stays empty for whoever reads it.
        # (typer's no_args_is_help prints it to stdout and an empty "fsaudit: " line.)
        with contextlib.redirect_stdout(sys.stderr):
            app(["--help"], standalone_mode=False)
        sys.exit(EXIT_USAGE)
    # Usage errors as one line rather than typer's boxed usage text.
    try:
        status = app(standalone_mode=False)
    except TyperException as exc:
        context = getattr(exc, "ctx", None)
        command = context.command_path if context else "fsaudit"
        # typer validates choices with pydantic, which prefixes its message with "Value error, ".
        message = exc.format_message().replace("Value error, ", "")
        print(f"fsaudit: {message} (see `{command} --help`)", file=sys.stderr)
        status = EXIT_USAGE
    except typer.Abort:
        status = 130
    sys.exit(status or 0)
