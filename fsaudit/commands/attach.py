"""fsaudit attach PID: trace a running process and the children it starts."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import List, Optional

import typer

from . import common
from .common import EXIT_CANNOT_TRACE, EXIT_USAGE, fail


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [os.fsdecode(a) for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


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
    """Trace PID (and what it forks from now on) until it exits, Ctrl-C, or --duration."""
    from ..tracer import Tracer, TracerError

    options = common.output_options(json_path, events, sarif, junit, output, format, fail_on, path, exclude, config)
    if pid <= 0 or not os.path.isdir(f"/proc/{pid}"):
        raise fail(f"no process with pid {pid}", EXIT_USAGE)
    if duration is not None and duration <= 0:
        raise fail("--duration must be positive", EXIT_USAGE)
    common.require_tracing()
    argv = _argv(pid)
    session = common.start_session(options, "attach", {**common.host_header(), "argv": argv, "pid": pid})
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = "/"
    view = common.open_view(live, session, cwd)
    try:
        tracer = Tracer(session.feed, stacks=stacks, **common.tracer_sizes())
    except TracerError as exc:
        raise fail(str(exc), EXIT_CANNOT_TRACE) from None
    tracer.attach(pid)
    stop = {"now": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
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
            signal.signal(signal.SIGINT, previous)
    view.settle()
    findings_status = session.finish({"argv": argv, "pid": pid, "exit": None})
    raise typer.Exit(findings_status or 0)
