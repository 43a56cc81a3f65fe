"""fsaudit attach PID: trace a running process, the processes it has started, and those it starts."""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import List, Optional

import typer

from . import common
from .common import EXIT_CANNOT_TRACE, EXIT_USAGE, fail

# Each detaches and writes every output (`timeout` sends SIGTERM, a closed terminal SIGHUP).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def command(
    pid: int = typer.Argument(..., help="The process to trace."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Detach after SECONDS."),
    json_path: Optional[str] = common.JsonOpt, events: Optional[str] = common.EventsOpt,
    sarif: Optional[str] = common.SarifOpt, junit: Optional[str] = common.JunitOpt,
    output: Optional[str] = common.OutputOpt, format: str = common.FormatOpt, fail_on: str = common.FailOnOpt,
    path: List[str] = common.PathOpt, exclude: List[str] = common.ExcludeOpt,
    config: Optional[Path] = common.ConfigOpt, live: Optional[bool] = common.LiveOpt,
    stacks: bool = common.StacksOpt,
) -> None:
    """Trace PID and its descendants (those running now and those it starts) until they
    exit, Ctrl-C, SIGTERM or SIGHUP, or --duration."""
    from ..tracing.attach_tree import AttachError, pin
    from ..tracing.tracer import Tracer, TracerError

    options = common.output_options(json_path, events, sarif, junit, output, format, fail_on, path, exclude, config)
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise fail(f"--duration must be a positive number of seconds, not {duration:g}", EXIT_USAGE)
    if pid <= 0:
        raise fail(f"no process with pid {pid}", EXIT_USAGE)
    try:
        # Held from before the probe loads: if the process exits meanwhile, its
        # PID can go to another process, which must not be traced in its place.
        target = pin(pid)
    except AttachError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    common.require_tracing()
    argv = target.argv
    session = common.start_session(options, "attach", {**common.host_header(), "argv": argv, "pid": pid})
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")     # for the dashboard's file names
    except OSError:
        cwd = "/"
    stop = {"now": False}
    previous = {signum: signal.signal(signum, lambda *_: stop.update(now=True)) for signum in STOP_SIGNALS}
    try:
        view = common.open_view(live, session, cwd)
        try:
            tracer = Tracer(session.feed, stacks=stacks, **common.tracer_sizes())
        except TracerError as exc:
            raise fail(str(exc), EXIT_CANNOT_TRACE) from None
        try:
            adopted = tracer.attach(target, session.warn)
        except AttachError as exc:
            tracer.close()
            raise fail(str(exc), EXIT_USAGE) from None
        descendants = adopted - 1
        typer.echo(f"fsaudit: attached to pid {pid} and {descendants} existing "
                   f"descendant{'' if descendants == 1 else 's'}", err=True)
        deadline = time.monotonic() + duration if duration else None
        try:
            view.start(tracer.t0_ns)
            while (tracer.tree_alive() and not stop["now"] and not view.stop_requested
                   and (deadline is None or time.monotonic() < deadline)):
                tracer.poll()
                view.tick()
        finally:
            try:
                tracer.stop(progress=view.catch_up)
            finally:
                view.stop()
        view.settle()
        findings_status = session.finish({"argv": argv, "pid": pid, "exit": None, "adopted": adopted})
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    raise typer.Exit(findings_status or 0)
