"""fsaudit run -- COMMAND: trace a command and every process it starts."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path
from typing import List, Optional

import typer

from . import common
from .common import EXIT_CANNOT_TRACE, EXIT_USAGE, fail


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
    output: Optional[str] = common.OutputOpt, format: str = common.FormatOpt, fail_on: str = common.FailOnOpt,
    path: List[str] = common.PathOpt, exclude: List[str] = common.ExcludeOpt,
    config: Optional[Path] = common.ConfigOpt, live: Optional[bool] = common.LiveOpt,
    stacks: bool = common.StacksOpt,
) -> None:
    """Trace COMMAND and every process it starts; exit with its status unless findings say otherwise."""
    from ..tracing.inject import InjectionError, parse_injection
    from ..tracing.stacks import perf_map_environment
    from ..tracing.tracer import Tracer, TracerError

    try:
        injections = [parse_injection(spec) for spec in inject]
    except InjectionError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    options = common.output_options(json_path, events, sarif, junit, output, format, fail_on, path, exclude, config)
    account = None
    if user is not None:
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            raise fail(f"--user {user}: no such user", EXIT_USAGE) from None
    common.require_tracing()
    header = {**common.host_header(), "argv": argv}
    if inject:
        header["inject"] = list(inject)
    session = common.start_session(options, "run", header)
    view = common.open_view(live, session, os.getcwd())
    try:
        tracer = Tracer(session.feed, stacks=stacks, **common.tracer_sizes())
    except TracerError as exc:
        raise fail(str(exc), EXIT_CANNOT_TRACE) from None
    try:
        child = tracer.spawn(argv, user=account, injections=injections, stdio=view.command_stdio(),
                             env=perf_map_environment(os.environ) if stacks else None)
    except (OSError, ValueError) as exc:
        tracer.stop()
        raise fail(f"cannot start {argv[0]}: {getattr(exc, 'strerror', None) or exc}", 127) from None
    except subprocess.SubprocessError:   # only --inject runs code between fork and exec
        tracer.stop()
        raise fail("cannot arm --inject: the kernel refused the seccomp user-notification filter",
                   EXIT_CANNOT_TRACE) from None
    # The command shares fsaudit's process group, so a Ctrl-C typed at a
    # terminal reaches it directly; a SIGINT sent to fsaudit alone, and
    # SIGTERM/SIGHUP, are passed on. fsaudit traces on until the tree is gone.
    interactive = os.isatty(0)

    def forward(signum, _frame):
        if child.poll() is None and not (signum == signal.SIGINT and interactive):
            os.kill(child.pid, signum)

    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in forwarded}
    try:
        view.start(tracer.t0_ns)
        try:
            while (child.poll() is None or tracer.tree_alive()) and not view.stop_requested:
                tracer.poll()
                view.tick()
        finally:
            tracer.stop(progress=view.catch_up)
        if view.stop_requested:   # `q`: tracing has ended, the command finishes untraced
            view.wait_for(child)
    finally:
        view.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    view.settle()
    status = child.returncode
    # After `q` the exit was not observed: the engine judges as after a detach.
    exit_info = None if view.stop_requested else {"code": status if status >= 0 else None,
                                                  "signal": -status if status < 0 else None}
    findings_status = session.finish({"argv": argv, "pid": child.pid, "exit": exit_info})
    if findings_status is not None:
        raise typer.Exit(findings_status)
    raise typer.Exit(status if status >= 0 else 128 - status)
