"""fsaudit doctor: can this host trace?"""

from __future__ import annotations

import typer

from ..tracing.host import first_failure, run_checks
from .common import EXIT_CANNOT_TRACE


def command() -> None:
    """Check capabilities (CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN), bcc, kernel headers, tracefs,
    tracepoints; seccomp user notification (for --inject), binutils (for --stacks) and the probe cache
    (whether traces start without compiling) warn only."""
    checks = run_checks(doctor=True)
    for check in checks:
        typer.echo(check.line())
    if first_failure(checks):
        raise typer.Exit(EXIT_CANNOT_TRACE)
