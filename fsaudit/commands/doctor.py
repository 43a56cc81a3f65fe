"""fsaudit doctor: can this host trace?"""

from __future__ import annotations

import typer

from ..doctor import first_failure, run_checks
from .common import EXIT_CANNOT_TRACE


def command() -> None:
    """Check root/CAP_BPF, bcc, kernel headers, tracefs, tracepoints and strace."""
    checks = run_checks()
    for check in checks:
        typer.echo(check.line())
    if first_failure(checks):
        raise typer.Exit(EXIT_CANNOT_TRACE)
