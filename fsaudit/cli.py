"""fsaudit command line: one module per subcommand under fsaudit/commands/."""

from __future__ import annotations

import sys

import typer

from .commands import attach, doctor, report, rules, run

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find where a program's data would not survive a crash or power cut.")
app.command("run", context_settings={"allow_interspersed_args": False})(run.command)
app.command("attach")(attach.command)
app.command("report")(report.command)
app.command("rules")(rules.command)
app.command("doctor")(doctor.command)


def main() -> None:
    # Paths that are not UTF-8 reach the text output as surrogate escapes:
    # write their original bytes back rather than fail.
    sys.stdout.reconfigure(errors="surrogateescape")
    app()
