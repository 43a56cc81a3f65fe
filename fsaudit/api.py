"""fsaudit as a library: trace a command, attach to a running process, analyse a recorded log.

The `run`, `attach` and `report` commands only parse their options and call
these, as the pytest plugin and `crash` are to. Each entry point writes
every output that OutputOptions asks for and returns a Result, or raises an
Error whose exit_code is what the command line exits with. The pytest plugin
traces its own session with trace_in_background, which runs attach's trace
loop in a helper process.

Tracing needs root (or CAP_BPF and CAP_PERFMON) and the main thread: the
trace loop installs signal handlers while it runs. Two environment variables
size the tracer's buffers: FSAUDIT_RINGBUF_PAGES, the kernel ring buffer in
pages (a power of 2; larger absorbs longer bursts while fsaudit is off the
CPU, tests shrink it to force losses), and FSAUDIT_BACKLOG_MIB, the records
awaiting analysis that stay in memory before the rest go to a temporary file.
"""

from __future__ import annotations

import json
import math
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Iterator, Sequence

from .analysis.config import ConfigError
from .analysis.findings import Finding
from .analysis.roles import DEFAULT_EXCLUDED as INCLUDABLE_ROLES
from .analysis.rules import RULES, RULES_BY_CODE
from .eventlog import EventLogError, read_event_log
from .outputs.outputfile import OutputError
from .outputs.printable import printable
from .outputs.registry import SUMMARY_FORMATS
from .session import SEVERITIES, OutputOptions, Session
from .tracing.inject import InjectionError, parse_injection

# The tracer, its helpers and the live view are imported where they are used:
# the tracer's modules alone take 0.13 s, which `report` has no use for.
if TYPE_CHECKING:
    from .outputs.live import View
    from .tracing.tracer import Tracer

__all__ = ["OutputOptions", "Result", "Error", "UsageError", "CannotTrace", "CannotStart",
           "ViewFactory", "no_view", "terminal_view", "trace_command", "attach", "analyse_log",
           "Background", "trace_in_background", "called_at", "at_or_above", "rule_code", "printable",
           "SEVERITIES"]

EXIT_USAGE, EXIT_CANNOT_TRACE, EXIT_CANNOT_START = 2, 3, 127
# While tracing, run passes these on to the command; attach detaches on them
# and writes every output (`timeout` sends SIGTERM, a closed terminal SIGHUP).
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
REPLAY_BATCH = 4096          # events handed to the session at a time by analyse_log


class Error(Exception):
    """fsaudit cannot do what was asked: the message says why in one line, and each
    kind's exit_code is the command line's exit status for it."""
    exit_code: int


class UsageError(Error):
    """Bad options or input: an option's value, an output path, the configuration, an
    event log, a process that cannot be attached to. Nothing was traced."""
    exit_code = EXIT_USAGE


class CannotTrace(Error):
    """The host cannot trace (the message names the failed check and its fix)."""
    exit_code = EXIT_CANNOT_TRACE


class CannotStart(Error):
    """The command to trace could not be started (not found, not executable, ...)."""
    exit_code = EXIT_CANNOT_START


@dataclass
class Result:
    """What one trace or analysis came to, once every output has been written."""
    status: int                  # what the command line exits with (each entry point says how it is chosen)
    findings: list[Finding]      # those the report lists (suppressed ones are not)
    warnings: list[str] = field(default_factory=list)   # the report's warnings[]: what fsaudit could not see or do


# What is shown while tracing: called with the session and the directory the
# traced program's relative paths start from, before the tracer loads.
ViewFactory = Callable[[Session, str], "View"]


def no_view(session: Session, cwd: str) -> View:
    """Nothing shown while tracing; the command keeps fsaudit's stdin, stdout and stderr."""
    from .outputs.live import View

    return View()


def terminal_view(live: bool | None, keep_output: bool = False) -> ViewFactory:
    """What the command line shows: the dashboard when live is True, or by default when
    stdout is a terminal; else a progress line on stderr. With live True and no
    terminal to draw on, opening the view raises UsageError. keep_output: the
    dashboard's log of the command's output is kept even after a run that succeeded
    (exit status 0); it is always kept otherwise, and removed when empty."""
    def open_(session: Session, cwd: str) -> View:
        from .outputs.live import NoTerminal, open_view

        try:
            return open_view(live, session, cwd, keep_output)
        except NoTerminal as exc:
            raise UsageError(str(exc)) from None

    return open_


def trace_command(argv: Sequence[str], outputs: OutputOptions | None = None, *, user: str | None = None,
                  inject: Sequence[str] = (), stacks: bool = False, view: ViewFactory = no_view,
                  capture: Callable[[tuple], None] | None = None,
                  observe: Callable[[list[dict]], None] | None = None) -> Result:
    """Start argv, trace it and every process it starts until the last of them has
    exited, then write every output.

    Every output is created before the command starts: a path that cannot be
    written runs nothing. user: run the command as that account, as a login
    would (the tracer stays root). inject: SYSCALL=ERRNO[@N|@N+][:path=GLOB]
    specs, calls made to fail without running. stacks: name the code behind
    each finding. view: what is shown while tracing; after its `q` tracing
    ends and the command goes on untraced, waited for unless the view leaves
    it running. capture and observe are `crash`'s recorder: capture gets the
    bytes of every write (the probe's EV_DATA records), observe every batch of
    events before the session does.

    While tracing, SIGINT, SIGTERM and SIGHUP sent to fsaudit are passed on to
    the command, except a SIGINT when stdin is a terminal: a Ctrl-C typed
    there reaches the command directly, as it shares fsaudit's process group.

    Result.status: 1 when a finding is at or above outputs.fail_on, 2 when an
    output could not be written (the others were), else the command's own exit
    status (128+N when signal N killed it), or 0 when it was left running. Raises UsageError, CannotTrace or
    CannotStart, having run nothing or stopped what it had started."""
    from .tracing.stacks.native import perf_map_environment

    argv = list(argv)
    if not argv:
        raise UsageError("no command to trace")
    try:
        injections = [parse_injection(spec) for spec in inject]
    except InjectionError as exc:
        raise UsageError(str(exc)) from None
    outputs = _checked(outputs)
    account = None
    if user is not None:
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            raise UsageError(f"--user {user}: no such user") from None
    _require_tracing()
    from .tracing.mounts import role_facts

    header = {**_host_header(), "argv": argv}
    if inject:
        header["inject"] = list(inject)
    header.update(role_facts())     # the command starts in our mount namespace, with our environment
    with _session(outputs, "run", header) as session:   # abandoned (files removed) if anything fails
        shown = view(session, os.getcwd())
        tracer = _tracer(session, stacks, capture, observe)
        try:
            child = tracer.spawn(argv, user=account, injections=injections, stdio=shown.command_stdio(),
                                 env=perf_map_environment(os.environ) if stacks else None)
        except (OSError, ValueError) as exc:
            tracer.stop()
            raise CannotStart(f"cannot start {argv[0]}: {getattr(exc, 'strerror', None) or exc}") from None
        except subprocess.SubprocessError:   # only --inject runs code between fork and exec
            tracer.stop()
            raise CannotTrace("cannot arm --inject: the kernel refused the seccomp user-notification filter") from None
        interactive = os.isatty(0)

        def forward(signum, _frame):
            if child.poll() is None and not (signum == signal.SIGINT and interactive):
                os.kill(child.pid, signum)

        with _handling_signals(forward):
            _trace(tracer, shown, lambda: child.poll() is None or tracer.tree_alive(), command=child)
        shown.settle()
        status = child.returncode            # None: the view left it running
        # After `q` the exit was not observed: the engine judges as after a detach.
        exit_info = None if shown.stop_requested else {"code": status if status >= 0 else None,
                                                       "signal": -status if status < 0 else None}
        decided = session.finish({"argv": argv, "pid": child.pid, "exit": exit_info})   # findings or a failed output
    if decided is None:
        decided = 0 if status is None else status if status >= 0 else 128 - status
    shown.finished(decided)
    return Result(decided, session.engine.findings, session.warnings)


def attach(pids: int | Sequence[int], outputs: OutputOptions | None = None, *, duration: float | None = None,
           stacks: bool = False, view: ViewFactory = no_view,
           on_attached: Callable[[int], None] = lambda descendants: None) -> Result:
    """Trace the running process pids (one PID or several) and their descendants,
    those running now and those they start, until they have all exited, SIGINT,
    SIGTERM or SIGHUP, the view's `q`, or duration seconds; then detach and write
    every output.

    Every PID is pinned (a pidfd and its start time) before the tracer loads, so a
    PID that another process takes meanwhile is never traced in its place; one that
    cannot be attached to fails them all, before anything is traced. A PID given
    twice, or one in the tree of another, is traced once. The report's target is
    the first PID's (target.pids lists them all); its roles come from the first
    PID's mounts. on_attached: called with the number of existing descendants
    (the PIDs given not counted) once they are all traced, before the view starts.

    Result.status: 1 when a finding is at or above outputs.fail_on, 2 when an
    output could not be written (the others were), else 0. Raises UsageError
    (no such process, a zombie, a kernel thread, a thread rather than a
    process, one that exited while the tracer loaded) or CannotTrace."""
    pids = [pids] if isinstance(pids, int) else list(pids)
    return _attach(pids, outputs, duration=duration, stacks=stacks, view=view, on_attached=on_attached)


def _attach(pids: list[int], outputs: OutputOptions | None, *, duration: float | None = None, stacks: bool = False,
            view: ViewFactory = no_view, on_attached: Callable[[int], None] = lambda descendants: None,
            serving: Callable[[Tracer, Session], Callable[[], bool]] | None = None) -> Result:
    """attach(); serving: trace_in_background's helper, called once every process is
    traced; the function it returns is called between two polls of the tracer, and
    tracing ends when it returns False."""
    from .tracing.attach_tree import AttachError, pin

    outputs = _checked(outputs)
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise UsageError(f"--duration must be a positive number of seconds, not {duration:g}")
    if not pids:
        raise UsageError("no process to attach to: give a PID (or -p PID, repeatable)")
    pids = list(dict.fromkeys(pids))
    for pid in pids:
        if pid <= 0:
            raise UsageError(f"no process with pid {pid}")
    with ExitStack() as until_adopted:
        targets = []
        for pid in pids:
            try:
                # Held from before the probe loads: if a process exits meanwhile, its
                # PID can go to another process, which must not be traced in its place.
                targets.append(pin(pid))
            except AttachError as exc:
                raise UsageError(str(exc)) from None
            until_adopted.callback(targets[-1].close)
        _require_tracing()
        from .tracing.mounts import role_facts

        first = targets[0]
        session = _session(outputs, "attach", {**_host_header(), "argv": first.argv, "pid": first.pid,
                                               **role_facts(first.pid)})
        with session:   # abandoned (files removed) if anything fails
            try:
                cwd = os.readlink(f"/proc/{first.pid}/cwd")     # for the view's file names
            except OSError:
                cwd = "/"
            stop = {"now": False}
            with _handling_signals(lambda *_: stop.update(now=True)):
                shown = view(session, cwd)
                tracer = _tracer(session, stacks)
                until_adopted.pop_all()       # tracer.attach closes a pin when it fails, the tracer's close() after
                adopted = 0
                for index, target in enumerate(targets):
                    try:
                        adopted += tracer.attach(target, session.warn)
                    except AttachError as exc:
                        for unattached in targets[index + 1:]:
                            unattached.close()
                        tracer.close()
                        raise UsageError(str(exc)) from None
                on_attached(adopted - len(targets))
                serve = serving(tracer, session) if serving else lambda: True
                deadline = time.monotonic() + duration if duration else None
                _trace(tracer, shown, lambda: (tracer.tree_alive() and not stop["now"]
                                               and (deadline is None or time.monotonic() < deadline) and serve()))
                shown.settle()
                findings_status = session.finish({"argv": first.argv, "pid": first.pid, "pids": pids, "exit": None,
                                                  "adopted": adopted})
    return Result(findings_status or 0, session.engine.findings, session.warnings)


def analyse_log(path: str | os.PathLike, outputs: OutputOptions | None = None) -> Result:
    """Replay an event log written by --events through the same engine as a live
    run (no root needed) and write every output; the summary goes to stdout
    unless outputs says otherwise. A log cut short (no trailer, or fewer events
    than its trailer counts) is analysed as far as it goes, and the report says
    it is incomplete.

    Result.status: 1 when a finding is at or above outputs.fail_on, 2 when an
    output could not be written (the others were), else 0. Raises UsageError
    when the log cannot be read or is not an event log."""
    outputs = _checked(outputs)
    try:
        stream = open(path, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    with stream:
        try:
            recorded = read_event_log(stream, lambda message: session.warn(f"{path}: {message}"))
            header = recorded.header
            session = _session(outputs, "report", {k: v for k, v in header.items() if k != "schema"})
            with session:       # abandoned (files removed) if the log turns out malformed
                batch: list[dict] = []
                for event in recorded.events():
                    batch.append(event)
                    if len(batch) >= REPLAY_BATCH:
                        session.feed(batch)
                        batch = []
                session.feed(batch)
        except EventLogError as exc:
            raise UsageError(f"{path}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if recorded.incomplete:
        session.mark_incomplete(recorded.incomplete)
    # pid and exit are left to the engine: the recorded root process's own events.
    findings_status = session.finish({"argv": header.get("argv", [])})
    return Result(findings_status or 0, session.engine.findings, session.warnings)


# Tracing the caller's own process tree, from a helper process beside it.

# The helper imports what the caller imported: it gets the caller's module search path
# (as multiprocessing's spawn does), not one that starts at the current directory.
HELPER = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
          "from fsaudit.api import _serve_background; sys.exit(_serve_background(json.loads(sys.argv[2])))")
HELPER_ERRORS = {kind.__name__: kind for kind in (UsageError, CannotTrace)}


class Background:
    """The trace that trace_in_background started: the findings so far on request,
    everything at stop()."""

    def __init__(self, helper: subprocess.Popen, control: int, replies: IO[str], stderr: IO[bytes]) -> None:
        self._helper = helper
        self._control = control
        self._replies = replies
        self._stderr = stderr
        self._findings: list[Finding] = []
        self._stopped = False
        self.t0_ns: int = self._receive("ready")["t0_ns"]

    def now(self) -> float:
        """Now on the events' clock, which called_at() reads too: seconds since
        observation began. The kernel stamps each call with bpf_ktime_get_ns(),
        CLOCK_MONOTONIC; the tracer turns it into `t` from its own
        time.monotonic_ns() at load, t0_ns, which is the same clock."""
        return round((time.monotonic_ns() - self.t0_ns) / 1e9, 6)

    def findings(self) -> list[Finding]:
        """Every finding so far, once everything the kernel recorded until this call
        is analysed. The order is kept from one call to the next: a new finding comes
        after the others; one that recurs (same rule, path and process) stays where
        it is and counts one more. Findings decided at the end of observation
        (FS102-FS105, ...) only come with stop()."""
        self._send("catch-up")
        for index, fields in self._receive("findings"):
            finding = Finding(**fields)
            if index < len(self._findings):
                self._findings[index] = finding
            else:
                self._findings.append(finding)
        return list(self._findings)

    def stop(self) -> Result:
        """Stop tracing and write every output; the Result is attach's, and its findings
        keep the order findings() gave them, those decided at the end after the others."""
        self._send("stop")
        try:
            result = self._receive("result")
        finally:
            self.close()
        return Result(result["status"], [Finding(**fields) for fields in result["findings"]], result["warnings"])

    def close(self) -> None:
        """End the trace without asking for its result: the helper detaches, writes
        the outputs and exits (stop() ends with this; calling it again does nothing)."""
        if self._stopped:
            return
        self._stopped = True
        os.close(self._control)         # the helper detaches when it reads the end of its requests,
        self._replies.close()           # and its answer, unread, cannot hold it up
        self._helper.wait()
        self._stderr.close()

    def _send(self, request: str) -> None:
        if self._stopped:
            raise UsageError("this trace has stopped")
        try:
            os.write(self._control, f"{request}\n".encode())
        except BrokenPipeError:
            raise self._helper_gone() from None

    def _receive(self, kind: str):
        line = self._replies.readline()
        if not line:
            raise self._helper_gone()
        message = json.loads(line)
        if "error" in message:
            self.close()
            raise HELPER_ERRORS[message["error"]["kind"]](message["error"]["message"])
        if kind not in message:     # it stopped tracing unasked (a SIGTERM) and sent its result
            raise self._helper_gone()
        return message[kind]

    def _helper_gone(self) -> Error:
        """The error to raise when the helper ended unasked: its status and the last
        line it wrote (a traceback's ends with the exception)."""
        status = self._helper.wait()
        self._stderr.seek(0)
        said = self._stderr.read().decode(errors="replace").strip().splitlines()
        self.close()
        return CannotTrace(f"the tracer's helper process ended (status {status})"
                           + (f": {printable(said[-1])}" if said else ""))


def trace_in_background(outputs: OutputOptions | None = None, *, stacks: bool = False) -> Background:
    """Trace this process and its descendants, those running now and those they start,
    until Background.stop(); return once every one of them is traced.

    A helper process attaches as attach() does and runs its trace loop, so the
    caller keeps its main thread and its signal handlers, and analysis takes
    none of its time. The helper is started before anything is traced, so it
    is never traced itself; it runs in a session of its own (a Ctrl-C typed at
    the terminal reaches the caller only), and detaches when the caller exits.
    outputs as for attach(), except that the summary is written only where
    outputs.summary_path says. Raises UsageError or CannotTrace as attach() does,
    with nothing left running."""
    outputs = _checked(outputs)
    if outputs.summary_path is None:
        outputs = replace(outputs, summary_path=os.devnull)
    control_read, control = os.pipe()
    replies, replies_write = os.pipe()
    stderr = tempfile.TemporaryFile(prefix="fsaudit-helper-")
    request = {"pid": os.getpid(), "stacks": stacks, "control": control_read, "replies": replies_write,
               "outputs": {**asdict(outputs), "config_path": outputs.config_path and str(outputs.config_path)}}
    try:
        helper = subprocess.Popen(
            [sys.executable, "-c", HELPER, json.dumps([p for p in sys.path if isinstance(p, str)]),
             json.dumps(request)],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, pass_fds=(control_read, replies_write),
            start_new_session=True)
    except OSError as exc:
        for fd in (control_read, control, replies, replies_write):
            os.close(fd)
        stderr.close()
        raise CannotTrace(f"cannot start the tracer's helper process {sys.executable}: {exc.strerror}") from None
    os.close(control_read)
    os.close(replies_write)
    return Background(helper, control, os.fdopen(replies, encoding="utf-8"), stderr)


def _serve_background(request: dict) -> int:
    """The helper process of trace_in_background: attach to the caller and, between
    two polls of the tracer, answer its requests (a line each on the control pipe)
    with a JSON line each on the replies pipe."""
    replies = os.fdopen(request["replies"], "w", encoding="utf-8")
    control = request["control"]
    os.set_blocking(control, False)
    counts: list[int] = []      # each finding's count, as last sent

    def send(kind: str, value) -> None:
        replies.write(json.dumps({kind: value}) + "\n")
        replies.flush()

    def changed(findings: list[Finding]) -> list:
        """The findings new or counted again since the last answer, with their places."""
        out = []
        for index, finding in enumerate(findings):
            if index == len(counts):
                counts.append(-1)
            if finding.count != counts[index]:
                counts[index] = finding.count
                out.append([index, asdict(finding)])
        return out

    def serving(tracer: Tracer, session: Session) -> Callable[[], bool]:
        tracer.wake_on(control)
        send("ready", {"t0_ns": tracer.t0_ns})
        unread = b""

        def requests_served() -> bool:
            nonlocal unread
            try:
                data = os.read(control, 4096)
            except BlockingIOError:
                return True
            if not data:
                return False        # the caller closed its end, or exited
            *requests, unread = (unread + data).split(b"\n")
            for line in requests:
                if line == b"stop":
                    return False
                tracer.catch_up()
                send("findings", changed(session.engine.findings))
            return True

        return requests_served

    options = request["outputs"]
    outputs = OutputOptions(**{**options, "config_path": options["config_path"] and Path(options["config_path"])})
    try:
        result = _attach([request["pid"]], outputs, stacks=request["stacks"], serving=serving)
        send("result", {"status": result.status, "findings": [asdict(f) for f in result.findings],
                        "warnings": result.warnings})
    except Error as exc:
        send("error", {"kind": type(exc).__name__, "message": str(exc)})
        return exc.exit_code
    except BrokenPipeError:     # the caller is gone: nobody to answer
        return 0
    return 0


def called_at(finding: Finding) -> float | None:
    """When the call that made the finding was made, on the events' clock
    (Background.now()): the latest of its evidence events, which is that call
    (the rename, the send, the last write before the end). None for a finding
    about the whole trace (FS902, events lost)."""
    return max((event["t"] for event in finding.evidence if "t" in event), default=None)


def at_or_above(finding: Finding, fail_on: str) -> bool:
    """Whether the finding's severity is fail_on or higher ("never": none is)."""
    return fail_on != "never" and SEVERITIES.index(finding.severity) <= SEVERITIES.index(fail_on)


def rule_code(code_or_name: str) -> str:
    """The code of the rule named by its code or its name (FS101, rename-unsynced-data);
    UsageError for no rule."""
    rule = RULES_BY_CODE.get(code_or_name.upper()) or next((r for r in RULES if r.name == code_or_name.lower()), None)
    if rule is None:
        raise UsageError(f"unknown rule {code_or_name!r}; `fsaudit rules` lists them")
    return rule.code


# The trace loop, which run and attach share.

def _trace(tracer: Tracer, view: View, tracing: Callable[[], bool], command: subprocess.Popen | None = None) -> None:
    """Show the view and analyse what the tracer takes in while tracing() holds and
    the view has not been quit (`q`); then stop the tracer, the view showing its
    progress through what it still holds (seconds, after a storm). command:
    after `q` it finishes untraced, and the view waits for it. The view is
    stopped (the terminal given back) on every path; settle() is the caller's."""
    try:
        try:
            view.start(tracer.t0_ns)
            while tracing() and not view.stop_requested:
                tracer.poll()
                view.tick()
        finally:
            tracer.stop(progress=view.catch_up)
        if command is not None and view.stop_requested:
            view.wait_for(command)
    finally:
        view.stop()


@contextmanager
def _handling_signals(handler) -> Iterator[None]:
    previous = {signum: signal.signal(signum, handler) for signum in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for signum, restored in previous.items():
            signal.signal(signum, restored)


def _checked(outputs: OutputOptions | None) -> OutputOptions:
    outputs = outputs or OutputOptions()
    if outputs.format not in SUMMARY_FORMATS:
        raise UsageError(f"--format must be {' or '.join(SUMMARY_FORMATS)}, not {outputs.format!r}")
    if outputs.fail_on not in SEVERITIES:
        raise UsageError(f"--fail-on must be one of {', '.join(SEVERITIES)}, not {outputs.fail_on!r}")
    for role in outputs.include:
        if role not in INCLUDABLE_ROLES:
            raise UsageError(f"--include {role!r}: not one of {', '.join(sorted(INCLUDABLE_ROLES))}")
    if outputs.config_path is not None and not outputs.config_path.is_file():
        raise UsageError(f"--config {outputs.config_path}: no such file")
    if outputs.source_root is not None and not os.path.isdir(outputs.source_root):
        raise UsageError(f"--source-root {outputs.source_root}: no such directory")
    return outputs


def _session(outputs: OutputOptions, mode: str, header: dict) -> Session:
    """The session, with every output already created: made before the command
    starts or the tracer attaches, so that a bad path runs nothing."""
    try:
        return Session(outputs, mode, header)
    except ConfigError as exc:
        raise UsageError(f"configuration: {exc}") from None
    except OutputError as exc:
        raise UsageError(str(exc)) from None


def _require_tracing() -> None:
    from .tracing.host import first_failure, run_checks

    failed = first_failure(run_checks())
    if failed:
        raise CannotTrace(f"cannot trace: {failed.line()}")


def _tracer(session: Session, stacks: bool, capture: Callable[[tuple], None] | None = None,
            observe: Callable[[list[dict]], None] | None = None) -> Tracer:
    """The tracer, loaded, feeding the session (observe first, when given); its
    buffers sized from the environment."""
    from .tracing.tracer import DEFAULT_BACKLOG_MIB, DEFAULT_RINGBUF_PAGES, Tracer, TracerError

    pages = os.environ.get("FSAUDIT_RINGBUF_PAGES", "") or str(DEFAULT_RINGBUF_PAGES)
    if not pages.isdigit() or int(pages) < 1 or int(pages) & (int(pages) - 1):
        raise UsageError(f"FSAUDIT_RINGBUF_PAGES={pages}: must be a power of 2 (pages)")
    backlog = os.environ.get("FSAUDIT_BACKLOG_MIB", "") or str(DEFAULT_BACKLOG_MIB)
    if not backlog.isdigit():
        raise UsageError(f"FSAUDIT_BACKLOG_MIB={backlog}: must be a whole number of MiB")
    try:
        feed = session.feed
        if observe is not None:
            def feed(events: list[dict]) -> None:
                observe(events)
                session.feed(events)
        return Tracer(feed, stacks=stacks, ringbuf_pages=int(pages), backlog_mib=int(backlog), capture=capture,
                      window_open=lambda: bool(session.engine.publications))
    except TracerError as exc:
        raise CannotTrace(str(exc)) from None


def _host_header() -> dict:
    return {"host": socket.gethostname(), "kernel": os.uname().release}
