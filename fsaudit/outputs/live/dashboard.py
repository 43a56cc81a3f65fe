"""What a trace shows while it runs: a terminal dashboard, or one progress line on stderr.

Both are driven by the tracer's poll loop (tick() after each poll) and read
the engine's state and findings at refresh time only, so they add no work per
event; rates come from sampling the engine's counters. Neither decides
anything: what is dirty, synced or a finding is the engine's word.
"""

from __future__ import annotations

import atexit
import heapq
import os
import select
import signal
import struct
import sys
import tempfile
import termios
import threading
import time
import tty
from collections import deque
from fcntl import ioctl

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from ..printable import printable

REFRESH_S = 0.2                  # dashboard redraws: 5 a second
RANK_S = 1.0                     # the Files panel re-ranks every file this often
RATE_WINDOW_S = 1.0              # rates are over about the last second
FILE_ROWS = 500                  # the busiest files the Files panel ranks and scrolls through
SETTLED_ROWS = 20                # rows per panel in the final screen
WIDE = 100                       # narrower: no runtime column (Processes), no fsync latencies (Files)
PROGRESS_AFTER_S = 2.0           # no progress line for shorter runs
PROGRESS_TTY_S = 0.5             # redrawn in place this often on a terminal
PROGRESS_PIPE_S = 10.0           # repeated this often, one line each, into a pipe or file
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
FILTERS = ("info", "warning", "error")          # `f` cycles the lowest severity shown
FILTER_LABEL = {"info": "all", "warning": "warning+", "error": "error"}
STATE_STYLE = {"dirty": "yellow", "synced": "green", "renamed": "magenta", "deleted": "dim", "clean": ""}
KEYS = {b"q": "quit", b"f": "filter", b"p": "pause", b"k": "up", b"\x1b[A": "up", b"j": "down",
        b"\x1b[B": "down", b"\x1b[5~": "page_up", b"\x1b[6~": "page_down"}


class NoTerminal(Exception):
    """--live was asked for and there is no terminal to draw on."""


def open_view(live: bool | None, session, cwd: str) -> View:
    """The dashboard when live is True, or by default when stdout is a terminal; else the progress line.

    Nothing is shown before start()."""
    if live is False or (live is None and not (sys.stdout.isatty() and os.environ.get("TERM") != "dumb")):
        return ProgressLine(session.engine, sys.stderr)
    if sys.stdout.isatty():
        screen = sys.stdout
    else:
        try:
            screen = open("/dev/tty", "w", encoding="utf-8", errors="replace")
        except OSError:
            raise NoTerminal("--live: there is no terminal to draw the dashboard on") from None
    if sys.stdin.isatty():
        keys_fd = sys.stdin.fileno()
    else:
        try:
            keys_fd = os.open("/dev/tty", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            keys_fd = None
    return Dashboard(session, screen, keys_fd, cwd)


class View:
    """The interface the run and attach loops drive."""

    stop_requested = False           # `q` was pressed

    def command_stdio(self) -> tuple[int, int, int] | None:
        """Fds to give the traced command as its 0, 1, 2; None: fsaudit's own."""
        return None

    def start(self, clock_origin_ns: int) -> None:
        """Begin showing; event times (`t`) count from clock_origin_ns (time.monotonic_ns)."""

    def tick(self) -> None:
        """Called after every poll of the tracer: cheap unless a refresh is due."""

    def catch_up(self) -> None:
        """Called between batches when tracing has ended and analysis is still
        working through what the tracer took in (after a storm, seconds)."""
        self.tick()

    def wait_for(self, child) -> None:
        """After `q` in run: the command goes on untraced; return when it has exited."""
        child.wait()

    def stop(self) -> None:
        """Give the terminal back (idempotent; also on error paths)."""

    def settle(self) -> None:
        """Tracing is over and every event delivered: show the final state, before the summary."""


# Formatting.

def format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def format_rate(per_s: float) -> str:
    if per_s < 10:
        return f"{per_s:.1f}" if per_s else "0"
    if per_s < 10_000:
        return f"{per_s:.0f}"
    if per_s < 10_000_000:
        return f"{per_s / 1000:.0f}k"
    return f"{per_s / 1e6:.0f}M"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"


def format_age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def format_latency(us: int) -> str:
    if us < 1000:
        return f"{us} µs"
    if us < 1_000_000:
        return f"{us / 1000:.1f} ms"
    return f"{us / 1e6:.1f} s"


def shorten_path(path: str, width: int, cwd: str | None = None) -> str:
    """path in at most width characters: relative to cwd when under it, then
    leading directories elided ("…/dir/name"), then the name's start."""
    if cwd and cwd != "/" and path.startswith(os.path.join(cwd, "")):
        path = path[len(cwd) + 1:]
    if len(path) <= width:
        return path
    parts = path.split("/")
    tail = parts[-1]
    for part in reversed(parts[:-1]):
        if len(f"…/{part}/{tail}") > width:
            break
        tail = f"{part}/{tail}"
    short = f"…/{tail}"
    if len(short) <= width:
        return short
    return "…" + parts[-1][len(parts[-1]) - width + 1:] if width > 1 else "…"


def file_state(state) -> str:
    """One word for a FileState: deleted, dirty, renamed (since its last sync), synced or clean."""
    if state.unlinked:
        return "deleted"
    if state.is_dirty:
        return "dirty"
    if state.renamed_from is not None and state.renamed_index > state.last_sync_index:
        return "renamed"
    if state.last_sync_index:
        return "synced"
    return "clean"


def exit_text(info) -> Text:
    if not info.exited:
        return Text("running", style="green")
    if info.exit_signal:
        try:
            name = signal.Signals(info.exit_signal).name
        except ValueError:
            name = f"signal {info.exit_signal}"
        return Text(name, style="red")
    return Text(f"exit {info.exit_code}", style="" if info.exit_code == 0 else "red")


def scope_text(config) -> str:
    if not config.include and not config.exclude:
        return "all files"
    text = " ".join(config.include) if config.include else "all files"
    return text + (" except " + " ".join(config.exclude) if config.exclude else "")


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


def reported_files(engine) -> int:
    """Files as the report counts them: in scope, regular, written or synced."""
    return sum(1 for s in engine.files.values() if s.in_scope and not s.is_dir and (s.writes or s.syncs))


def grid(columns: list[tuple[str, int | None, bool]], rows: list[list], width: int, header: bool = True) -> Text:
    """rows in columns of (header, width, right-aligned) two spaces apart, one Text line each; the
    column of width None takes what the others leave. Unlike rich's Table, which measures every
    cell at every redraw (eight times the cost for the Files panel), the widths are given."""
    rest = width - sum(w for _, w, _ in columns if w is not None) - 2 * (len(columns) - 1)
    widths = [max(rest, 1) if w is None else w for _, w, _ in columns]
    lines = [[Text(name, style="bold") for name, _, _ in columns]] if header else []
    out = []
    for cells in lines + rows:
        line = Text(no_wrap=True)
        for index, (cell, cell_width, (_, _, right)) in enumerate(zip(cells, widths, columns)):
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            text.truncate(cell_width, overflow="ellipsis")
            padding = " " * (cell_width - text.cell_len)
            line.append("  " if index else "")
            line.append_text(Text(padding) + text if right else text + Text(padding))
        out.append(line)
    return Text("\n", no_wrap=True).join(out)


class ProgressLine(View):
    """Not live: after 2 s, one line on stderr. A terminal gets it redrawn in
    place (carriage return, no escape codes); a pipe or file gets it as a
    fresh line every 10 s, so CI logs show progress without control characters."""

    def __init__(self, engine, stream) -> None:
        self.engine = engine
        self.stream = stream
        self.in_place = stream.isatty()
        self.interval = PROGRESS_TTY_S if self.in_place else PROGRESS_PIPE_S
        self.started = self.due = 0.0
        self.shown_width = 0
        self.doing = "tracing"

    def start(self, clock_origin_ns: int) -> None:
        self.started = time.monotonic()
        self.due = self.started + PROGRESS_AFTER_S

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self.due:
            self.due = now + self.interval
            self._write(now)

    def catch_up(self) -> None:
        self.doing = "tracing ended, analysing"
        self.tick()

    def settle(self) -> None:
        self.doing = "tracing"
        if self.in_place and self.shown_width:      # the final figures stay on their line
            self._write(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _write(self, now: float) -> None:
        engine = self.engine
        line = (f"fsaudit: {self.doing} {format_duration(now - self.started)}: {plural(engine.counts.events, 'event')}, "
                f"{plural(reported_files(engine), 'file')}, {plural(len(engine.findings), 'finding')}")
        if engine.counts.lost_events:
            line += f", {engine.counts.lost_events:,} events lost"
        if self.in_place:
            self.stream.write("\r" + line.ljust(self.shown_width))
            self.shown_width = max(self.shown_width, len(line))
        else:
            self.stream.write(line + "\n")
            self.shown_width = len(line)
        self.stream.flush()


class CommandOutput:
    """Where the traced command writes while the dashboard has the terminal: a
    pty, so the command still sees a terminal (isatty, line-buffered stdio, the
    same analysis as a run without the dashboard), copied by a thread into a
    log file the dashboard names.

    The pty is read to its end whatever happens to the log: a command whose
    output is not read blocks on its next write. Once the log cannot be
    created or written (ENOSPC, EIO, EFBIG...), the rest is counted as dropped."""

    def __init__(self, size: os.terminal_size, stdin_is_screen: bool) -> None:
        self.master, self.slave = os.openpty()
        ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", size.lines, size.columns, 0, 0))
        attrs = termios.tcgetattr(self.slave)
        attrs[1] &= ~termios.ONLCR           # the log gets "\n", not the terminal's "\r\n"
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.log_fd: int | None = None
        self.path: str | None = None
        self.error: str | None = None        # why output was dropped, once it is
        try:
            self.log_fd, self.path = tempfile.mkstemp(prefix="fsaudit-output-", suffix=".log")
        except OSError as exc:              # mkstemp's own error, or gettempdir's "no usable directory"
            where = f" in {os.path.dirname(exc.filename)}" if exc.filename else ""
            self.error = f"cannot create a log{where}: {exc.strerror or exc}"
        # Keys typed at the dashboard are for the dashboard: a command that
        # would read the same terminal reads /dev/null instead.
        self.stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC) if stdin_is_screen else 0
        self.bytes = 0                       # written to the log
        self.dropped = 0                     # read from the pty, not written
        self.thread: threading.Thread | None = None

    @property
    def stdio(self) -> tuple[int, int, int]:
        return self.stdin, self.slave, self.slave

    def command_started(self) -> None:
        os.close(self.slave)                 # else the copy never sees the pty's end
        if self.stdin:
            os.close(self.stdin)
        self.thread = threading.Thread(target=self._copy, name="fsaudit-command-output", daemon=True)
        self.thread.start()

    def _copy(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:                  # EIO: every process holding the pty has closed it
                break
            if not data:
                break
            self._log(memoryview(data))
        if self.log_fd is not None:
            os.close(self.log_fd)
            self.log_fd = None
        os.close(self.master)

    def _log(self, data: memoryview) -> None:
        while data and self.log_fd is not None:
            try:
                written = os.write(self.log_fd, data)
            except OSError as exc:
                self.error = exc.strerror or str(exc)
                os.close(self.log_fd)        # nothing after the failure: the log has no holes
                self.log_fd = None
                break
            self.bytes += written
            data = data[written:]
        self.dropped += len(data)

    def dropped_message(self) -> str | None:
        """What was lost, for the summary and the report; None if nothing was."""
        if not self.dropped:
            return None
        where = f" to {self.path}" if self.path else ""
        return f"command output: {self.dropped:,} bytes could not be written{where} ({self.error})"

    def status(self) -> str:
        if self.path is None and not self.dropped:
            return "command output: none"
        text = f"command output: {self.path or 'not logged'} ({format_bytes(self.bytes)}"
        if self.dropped:
            text += f", {format_bytes(self.dropped)} dropped: {self.error}"
        return text + ")"

    def finish(self) -> None:
        """Let the copy catch up with a command that has exited (a child it left
        running may hold the pty: it is not waited for). An empty log is removed."""
        if self.thread is not None:
            self.thread.join(timeout=1.0)
        received = self.bytes or self.dropped
        if self.path and not received and not (self.thread and self.thread.is_alive()):
            os.unlink(self.path)
            self.path = None


class Dashboard(View):
    """The live terminal dashboard (rich, alternate screen), redrawn from engine state."""

    def __init__(self, session, screen, keys_fd: int | None, cwd: str) -> None:
        self.session = session
        self.engine = session.engine
        self.mode = session.mode
        self.injections = session.header.get("inject", [])
        # attach: the engine never sees the exec of the process it joined; the header has its argv.
        self.known_argv = {session.header["pid"]: session.header.get("argv")} if "pid" in session.header else {}
        # Every name shown comes from the traced program or the command line:
        # through printable(), so no ESC sequence or newline reaches the terminal.
        self.scope = printable(scope_text(session.config))
        self.cwd = printable(cwd)                # to shorten paths that are printable() already
        self.screen_fd = screen.fileno()
        self.console = Console(file=screen, highlight=False)
        self.keys_fd = keys_fd
        self.reading_keys = keys_fd is not None
        self.output: CommandOutput | None = None
        self.live: Live | None = None
        self.clock_origin_ns = time.monotonic_ns()
        self.started = time.monotonic()
        self.due = 0.0
        self.paused = False
        self._drawn_paused = False
        self.min_severity = FILTERS[0]
        self.scroll = 0
        self.waiting = False                 # `q` in run: tracing over, the command goes on
        self.stopped_at: float | None = None
        self._saved_termios = None
        self._previous_excepthook = None
        self._previous_signals: dict = {}
        self._samples: deque = deque()       # (monotonic, events, {pid: (syscalls, writes, syncs)})
        self._rates: dict = {}
        self._event_rate = 0.0
        self._ranked: list = []              # the busiest FileStates at the last ranking
        self._rank_due = 0.0
        atexit.register(self._at_exit)

    def command_stdio(self) -> tuple[int, int, int]:
        self.output = CommandOutput(os.get_terminal_size(self.screen_fd), self.keys_fd == 0)
        return self.output.stdio

    # Taking and giving back the terminal.

    def start(self, clock_origin_ns: int) -> None:
        self.clock_origin_ns = clock_origin_ns
        self.started = time.monotonic()
        if self.output:
            self.output.command_started()
        self._previous_excepthook = sys.excepthook
        sys.excepthook = self._excepthook
        for signum, handler in ((signal.SIGTERM, self._die_by_signal), (signal.SIGHUP, self._die_by_signal),
                                (signal.SIGQUIT, self._die_by_signal), (signal.SIGTSTP, self._suspend)):
            if signal.getsignal(signum) == signal.SIG_DFL:
                self._previous_signals[signum] = signal.signal(signum, handler)
        self._take_terminal()

    def stop(self) -> None:
        self._release_terminal()
        if self._previous_excepthook is not None:
            sys.excepthook = self._previous_excepthook
            self._previous_excepthook = None
        for signum, handler in self._previous_signals.items():
            signal.signal(signum, handler)
        self._previous_signals = {}

    def _take_terminal(self) -> None:
        if self.keys_fd is not None:
            self._saved_termios = termios.tcgetattr(self.keys_fd)
            tty.setcbreak(self.keys_fd, termios.TCSANOW)     # keys one at a time, unechoed; Ctrl-C still signals
        self.live = Live(console=self.console, screen=True, auto_refresh=False,
                         redirect_stdout=False, redirect_stderr=False)
        self.live.start()
        self._drawn_paused = False
        self._refresh(time.monotonic())

    def _release_terminal(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self._saved_termios is not None:
            try:
                termios.tcsetattr(self.keys_fd, termios.TCSADRAIN, self._saved_termios)
            except termios.error:            # the terminal is gone
                pass
            self._saved_termios = None

    def _excepthook(self, *exc_info) -> None:
        hook = self._previous_excepthook
        self.stop()                          # the traceback goes to the normal screen
        hook(*exc_info)

    def _die_by_signal(self, signum, _frame) -> None:
        self.stop()                          # which puts the default action back
        os.kill(os.getpid(), signum)

    def _suspend(self, _signum, _frame) -> None:
        """Ctrl-Z: give the shell its screen and modes, stop; on `fg`, take them again."""
        self._release_terminal()
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)   # stopped here until SIGCONT
        signal.signal(signal.SIGTSTP, self._suspend)
        self._take_terminal()

    def _at_exit(self) -> None:
        self.stop()
        if self.output and self.output.thread is None:    # the command never started
            self.output.finish()

    # Driven by the poll loop.

    def tick(self) -> None:
        if self.reading_keys:
            self._read_keys()
        now = time.monotonic()
        if now >= self.due:
            self._refresh(now)

    def wait_for(self, child) -> None:
        self.waiting = True
        self.stopped_at = time.monotonic()
        self._refresh(self.stopped_at)
        while child.poll() is None:
            if self.reading_keys:
                select.select([self.keys_fd], [], [], REFRESH_S)
            else:
                time.sleep(REFRESH_S)
            self.tick()

    def settle(self) -> None:
        if self.output:
            self.output.finish()
            dropped = self.output.dropped_message()
            if dropped:                      # the settled status line below says it on screen
                self.session.warn(dropped, now=False)
        self.console.size = os.get_terminal_size(self.screen_fd)
        width = self.console.size.width
        self._rank_due = 0.0                 # rank the final state
        processes = self._process_rows(SETTLED_ROWS, width, totals=True)
        files = self._file_rows(SETTLED_ROWS, width)
        self.console.print(Group(self._status(settled=True), processes, files, Text()))

    def _read_keys(self) -> None:
        if not select.select([self.keys_fd], [], [], 0)[0]:
            return
        try:
            data = os.read(self.keys_fd, 64)
        except OSError:
            data = b""
        if not data:                         # the terminal is gone: no more keys
            self.reading_keys = False
        while data:
            key = next((k for k in KEYS if data.startswith(k)), data[:1])
            data = data[len(key):]
            action = KEYS.get(key)
            if action == "quit":
                self.stop_requested = True
            elif action == "filter":
                self.min_severity = FILTERS[(FILTERS.index(self.min_severity) + 1) % len(FILTERS)]
            elif action == "pause":
                self.paused = not self.paused
                self._samples.clear()        # rates start afresh after a pause
            elif action in ("up", "down", "page_up", "page_down"):
                step = {"up": -1, "down": 1, "page_up": -10, "page_down": 10}[action]
                self.scroll = max(0, self.scroll + step)
            else:
                continue
            self.due = 0.0                   # show the effect now, paused or not
            self._drawn_paused = False

    # Rendering.

    def _refresh(self, now: float) -> None:
        self.due = now + REFRESH_S
        if self.live is None or (self.paused and self._drawn_paused):
            return
        self._drawn_paused = self.paused     # one frame saying "paused", then none until `p` again
        self._sample(now)
        self.console.size = os.get_terminal_size(self.screen_fd)
        self.live.update(self._screen(), refresh=True)

    def _sample(self, now: float) -> None:
        """Rates by sampling counters: the current values against those of about a second ago."""
        engine = self.engine
        current = {pid: (info.syscalls, info.io.writes, info.io.fsync + info.io.fdatasync)
                   for pid, info in engine.processes.items()}
        samples = self._samples
        samples.append((now, engine.counts.events, current))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        then, events_then, counts_then = samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return
        zero = (0, 0, 0)
        self._rates = {pid: tuple((a - b) / elapsed for a, b in zip(counts, counts_then.get(pid, zero)))
                       for pid, counts in current.items()}
        self._event_rate = (engine.counts.events - events_then) / elapsed

    def _now_t(self) -> float:
        """Now on the events' clock (their `t`)."""
        return (time.monotonic_ns() - self.clock_origin_ns) / 1e9

    def _screen(self) -> Group:
        width, height = self.console.size
        body = max(height - 2, 6)            # two lines of status at the bottom
        share = max(body // 4, 1)
        shown_findings = self._shown_findings()
        heights = [min(max(len(self.engine.processes), 1), share) + 3,      # borders and header
                   0,
                   min(max(len(shown_findings), 1), share) + 2]             # borders
        heights[1] = max(body - heights[0] - heights[2], 4)
        panels = [self._process_rows(heights[0] - 3, width), self._file_rows(heights[1] - 3, width),
                  self._findings_panel(shown_findings, heights[2] - 2, width)]
        for panel, panel_height in zip(panels, heights):
            panel.height = panel_height      # the Files panel takes what the others leave
        return Group(*panels, self._status())

    def _status(self, settled: bool = False) -> Text:
        engine = self.engine
        elapsed = (self.stopped_at or time.monotonic()) - self.started
        lost = engine.counts.lost_events
        parts = [Text(format_duration(elapsed), style="bold"),
                 Text(f"{engine.counts.events:,} events" if settled
                      else f"{format_rate(self._event_rate)} events/s ({engine.counts.events:,})"),
                 Text(f"{lost:,} lost", style="bold red" if lost else ""),
                 Text(f"scope: {self.scope}")]
        if self.injections:
            fired = engine.injections_fired
            parts.append(Text("inject: " + ", ".join(f"{printable(spec)} (fired {fired.get(spec, 0)})"
                                                     for spec in self.injections)))
        if self.output:
            parts.append(Text(printable(self.output.status()), style="bold red" if self.output.dropped else ""))
        line = Text(" | ").join(parts)
        if settled:
            return line
        if self.waiting:
            keys = Text("tracing stopped; waiting for the command to finish (Ctrl-C reaches it)",
                        style="bold yellow")
        else:
            stop = "q detach" if self.mode == "attach" else "q stop tracing"
            keys = Text(f"{stop} | f findings: {FILTER_LABEL[self.min_severity]} | "
                        f"p {'resume' if self.paused else 'pause'} | up/down scroll files", style="dim")
        if self.paused:
            keys = Text.assemble(("PAUSED ", "bold reverse"), keys)
        status = Text("\n").join([line, keys])
        status.no_wrap, status.overflow = True, "ellipsis"    # two lines, whatever the width
        return status

    def _process_rows(self, rows: int, width: int, totals: bool = False) -> Panel:
        """Rates while tracing; at the end (totals) the counts, as rates of a finished process are 0."""
        engine = self.engine
        wide = width >= WIDE
        # Running first (oldest first), then the exited (busiest first).
        infos = sorted(engine.processes.values(),
                       key=lambda info: (info.exited, -info.syscalls if info.exited else info.pid))
        running = sum(1 for info in infos if not info.exited)
        columns = [("pid", 7, True), ("command", None, False)]
        if wide:
            columns.append(("runtime", 14, False))
        columns += [(name if totals else f"{name}/s", 10, True) for name in ("syscalls", "writes", "fsyncs")]
        columns.append(("status", 9, False))
        zero = (0.0, 0.0, 0.0)
        cells = []
        for info in infos[:rows]:
            argv = info.argv or self.known_argv.get(info.pid)
            row = [str(info.pid), printable(" ".join(argv) if argv else (info.exe or "?"))]
            if wide:
                runtime = info.runtime or {}
                row.append(printable(" ".join(filter(None, (runtime.get("name"), runtime.get("version"))))))
            if totals:
                row.extend(f"{n:,}" for n in (info.syscalls, info.io.writes, info.io.fsync + info.io.fdatasync))
            else:
                row.extend(format_rate(r) for r in (zero if info.exited else self._rates.get(info.pid, zero)))
            cells.append([*row, exit_text(info)])
        title = f"Processes ({running} running, {len(infos) - running} exited"
        if len(infos) > rows:
            title += f", {rows} shown"
        return Panel(grid(columns, cells, width - 4), title=title + ")", title_align="left")

    def _ranked_files(self, now: float) -> list:
        """The busiest files (most writes), with those unlinked since the last ranking kept as deleted.
        Ranked once a second (a pass over every file); the rows show their current figures at every redraw."""
        if now >= self._rank_due:
            self._rank_due = now + RANK_S
            candidates = [state for state in self.engine.files.values()
                          if state.in_scope and not state.is_dir and (state.writes or state.syncs or state.is_dirty)]
            candidates.extend(state for state in self._ranked if state.unlinked)
            ranked = heapq.nlargest(FILE_ROWS, candidates, key=lambda s: (s.writes, s.dirty_bytes))
            self._ranked = self.engine.pin(ranked)   # kept as the same objects until the next ranking
        return self._ranked

    def _file_rows(self, rows: int, width: int) -> Panel:
        ranked = self._ranked_files(time.monotonic())
        rows = max(rows, 1)
        self.scroll = min(self.scroll, max(len(ranked) - rows, 0))
        marked = self._finding_paths()
        now_t = self._now_t()
        wide = width >= WIDE
        columns = [("state", 7, False), ("unsynced", 10, True), ("writes", 7, True), ("last sync", 10, True)]
        if wide:
            columns.append(("fsync p50/max", 15, True))
        columns.append(("!", 1, False))
        # The path takes what the other columns and the gaps leave inside the panel's border.
        path_width = max(width - 4 - sum(w for _, w, _ in columns) - 2 * len(columns), 8)
        columns.insert(0, ("path", path_width, False))
        cells = []
        for state in ranked[self.scroll:self.scroll + rows]:
            word = file_state(state)
            path = printable(state.path)
            label = shorten_path(path, path_width, self.cwd)
            if state.renamed_from is not None:
                old = state.renamed_from
                origin = os.path.basename(old) if os.path.dirname(old) == os.path.dirname(state.path) else old
                arrow = f" ← {shorten_path(printable(origin), path_width // 2, self.cwd)}"
                label = shorten_path(path, max(path_width - len(arrow), 8), self.cwd) + arrow
            last_sync = (format_age(max(now_t - state.last_sync_at, 0.0)) if state.last_sync_at is not None
                         else "never" if not state.last_sync_index else "")
            row = [Text(label, style="dim" if word == "deleted" else ""), Text(word, style=STATE_STYLE[word]),
                   Text(format_bytes(state.dirty_bytes), style="yellow" if state.dirty_bytes else "dim"),
                   f"{state.writes:,}", last_sync]
            if wide:
                latencies = state.sync_latencies_us
                row.append(f"{format_latency(sorted(latencies)[(len(latencies) - 1) // 2])} / "
                           f"{format_latency(max(latencies))}" if latencies else "")
            severity = marked.get(state.path)
            row.append(Text("!", style=SEVERITY_STYLE[severity]) if severity else "")
            cells.append(row)
        title = f"Files ({len(ranked)}{'+' if len(ranked) == FILE_ROWS else ''}, busiest first"
        if len(ranked) > rows:
            title += f", {self.scroll + 1}-{min(self.scroll + rows, len(ranked))} shown"
        return Panel(grid(columns, cells, width - 4), title=title + ")", title_align="left")

    def _finding_paths(self) -> dict:
        """path -> the worst severity of the findings about it (their path or rename target)."""
        marked: dict = {}
        for finding in self.engine.findings:
            for path in (finding.path, finding.target_path):
                current = marked.get(path)
                if path and (current is None or SEVERITY_RANK[finding.severity] < SEVERITY_RANK[current]):
                    marked[path] = finding.severity
        return marked

    def _shown_findings(self) -> list:
        limit = SEVERITY_RANK[self.min_severity]
        return [f for f in self.engine.findings if SEVERITY_RANK[f.severity] <= limit]

    def _findings_panel(self, shown: list, rows: int, width: int) -> Panel:
        columns = [("code", 5, False), ("severity", 8, False), ("message", None, False)]
        cells = [[finding.rule, Text(finding.severity, style=SEVERITY_STYLE[finding.severity]),
                  printable(finding.message) + (f" (x{finding.count})" if finding.count > 1 else "")]
                 for finding in shown[-rows:]]      # the latest that fit, in the order raised
        total = len(self.engine.findings)
        title = f"Findings ({len(shown)}" + (f" of {total}" if len(shown) != total else "")
        title += f", showing {FILTER_LABEL[self.min_severity]}"
        if len(shown) > rows:
            title += f", latest {rows} shown"
        return Panel(grid(columns, cells, width - 4, header=False), title=title + ")", title_align="left")
