"""The live terminal dashboard: it takes the terminal (alternate screen, keys, signals) and, at
each refresh, takes a snapshot of the engine (fsaudit.analysis.snapshot) and redraws the panels
from it, so it adds no work per event; rates come from sampling the snapshots' counters."""

from __future__ import annotations

import atexit
import os
import re
import select
import signal
import sys
import termios
import time
import tty
from collections import deque

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from ...analysis.snapshot import SEVERITY_RANK, Snapshot, take_snapshot
from ..printable import printable
from .command_output import CommandOutput
from .format import format_duration, format_rate, scope_text
from .panels import (FILE_ROWS, FILTER_LABEL, files_panel, findings_panel, help_panel, output_panel, process_entries,
                     process_panel)
from .view import View

REFRESH_S = 0.2                  # dashboard redraws: 5 a second
RANK_S = 1.0                     # the Files panel re-ranks every file this often
RATE_WINDOW_S = 1.0              # rates are over about the last second
SETTLED_ROWS = 20                # rows per panel in the final screen
FILTERS = ("info", "warning", "error")          # `f` cycles the lowest severity shown
# Keys, and the sequences terminals send for the others (normal and application cursor modes).
KEYS = {b"q": "quit", b"w": "wait", b"f": "filter", b"p": "pause", b"o": "output", b"?": "help",
        b"k": "up", b"\x1b[A": "up", b"\x1bOA": "up", b"j": "down", b"\x1b[B": "down", b"\x1bOB": "down",
        b"\x1b[5~": "page_up", b"\x1b[6~": "page_down",
        b"g": "home", b"\x1b[H": "home", b"\x1bOH": "home", b"\x1b[1~": "home", b"\x1b[7~": "home",
        b"G": "end", b"\x1b[F": "end", b"\x1bOF": "end", b"\x1b[4~": "end", b"\x1b[8~": "end"}
# A sequence is taken whole, known or not: the letters of an unknown one are not keys.
KEY_SEQUENCE = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|O.)?", re.DOTALL)
SCROLL = {"up": -1, "down": 1, "page_up": -10, "page_down": 10}
PANEL_FRAMES = {"processes": 3, "files": 3, "output": 2, "findings": 2}     # borders, and the header rows


class Dashboard(View):
    """The live terminal dashboard (rich, alternate screen), redrawn from snapshots of the engine."""

    def __init__(self, session, screen, keys_fd: int | None, cwd: str, keep_output: bool = False) -> None:
        self.session = session
        self.engine = session.engine         # read only through take_snapshot
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
        self.keep_output = keep_output       # --keep-output: the log stays even after a run that succeeded
        self.output_shown = True             # `o` hides and shows the Output panel
        self.help_shown = False              # `?`
        self.live: Live | None = None
        self.clock_origin_ns = time.monotonic_ns()
        self.started = time.monotonic()
        self.due = 0.0
        self.paused = False
        self._drawn_paused = False
        self.min_severity = FILTERS[0]
        self.scroll = 0
        # After `q` in run the command goes on untraced: fsaudit waits for it when asked (`w`), and
        # leaves it running at a second `q`, unless it must stay: fsaudit answers an --inject
        # filter, and the end of a session's leader hangs up its terminal's foreground processes.
        self.must_wait = ("its --inject filter needs fsaudit" if self.injections
                          else "leaving would hang up its terminal" if os.getsid(0) == os.getpid() else None)
        self.waiting = False
        self.leaving = False
        self.left_running: int | None = None     # the pid of the command left running
        self.stopped_at: float | None = None
        self._saved_termios = None
        self._previous_excepthook = None
        self._previous_signals: dict = {}
        self._samples: deque = deque()       # (monotonic, events, {pid: (syscalls, writes, syncs)})
        self._rates: dict = {}
        self._event_rate = 0.0
        self.snapshot: Snapshot = take_snapshot(self.engine, keep=FILE_ROWS)
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
        self._refresh(time.monotonic())
        while child.poll() is None:
            if self.leaving:
                self.left_running = child.pid
                return
            if self.reading_keys:
                select.select([self.keys_fd], [], [], REFRESH_S)
            else:
                time.sleep(REFRESH_S)
            self.tick()

    def settle(self) -> None:
        if self.output:
            self.output.finish(command_running=self.left_running is not None)
            dropped = self.output.dropped_message()
            if dropped:                      # the settled status line below says it on screen
                self.session.warn(dropped, now=False)
        self.console.size = os.get_terminal_size(self.screen_fd)
        width = self.console.size.width
        self._take(time.monotonic(), rank=True)     # rank the final state
        processes = self._process_rows(SETTLED_ROWS, width, totals=True)
        files = self._file_rows(SETTLED_ROWS, width)
        self.console.print(Group(self._status(settled=True), processes, files, Text()))

    def finished(self, status: int) -> None:
        # Lines as the summary's: whole, the terminal wraps them (a path stays one word to copy).
        if self.left_running is not None:
            self.console.print(f"fsaudit: pid {self.left_running} runs on untraced; fsaudit did not wait for it "
                               "(its exit status is not fsaudit's)", soft_wrap=True, markup=False)
        if self.output:
            line = self.output.conclude(keep=self.keep_output or status != 0)
            if line:
                self.console.print(printable(line), soft_wrap=True, markup=False)

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
            sequence = KEY_SEQUENCE.match(data)
            key = sequence.group() if sequence else data[:1]
            data = data[len(key):]
            action = KEYS.get(key)
            if action == "quit":
                if self.stop_requested and self.mode == "run" and not self.must_wait:
                    self.leaving = True
                if not self.stop_requested:
                    self.stop_requested = True
                    self.stopped_at = time.monotonic()
            elif action == "wait" and self.stop_requested:
                self.waiting = True
            elif action == "filter":
                self.min_severity = FILTERS[(FILTERS.index(self.min_severity) + 1) % len(FILTERS)]
            elif action == "pause":
                self.paused = not self.paused
                self._samples.clear()        # rates start afresh after a pause
            elif action == "output" and self.output:
                self.output_shown = not self.output_shown
            elif action == "help":
                self.help_shown = not self.help_shown
            elif action in SCROLL:
                self.scroll = max(0, self.scroll + SCROLL[action])
            elif action == "home":
                self.scroll = 0
            elif action == "end":
                self.scroll = FILE_ROWS      # as far as it goes: the Files panel stops at its last row
            else:
                continue
            self.due = 0.0                   # show the effect now, paused or not
            self._drawn_paused = False

    # Rendering.

    def _refresh(self, now: float) -> None:
        self.due = now + REFRESH_S
        if self.live is None:
            return
        if self.paused and self._drawn_paused:
            # Nothing drawn, but the rows go on following their files (renamed, unlinked), which
            # only the engine's latest moves can tell.
            self.snapshot = take_snapshot(self.engine, self.snapshot, keep=FILE_ROWS, rank=False)
            return
        self._drawn_paused = self.paused     # one frame saying "paused", then none until `p` again
        self._take(now)
        self._sample(now)
        self.console.size = os.get_terminal_size(self.screen_fd)
        self.live.update(self._screen(), refresh=True)

    def _take(self, now: float, rank: bool = False) -> None:
        """The engine's state now, its busiest files ranked afresh once a second (a pass over
        every file); in between the rows follow their files, showing their current figures."""
        rank = rank or now >= self._rank_due
        if rank:
            self._rank_due = now + RANK_S
        self.snapshot = take_snapshot(self.engine, self.snapshot, keep=FILE_ROWS, rank=rank)

    def _sample(self, now: float) -> None:
        """Rates by sampling counters: the current values against those of about a second ago."""
        snapshot = self.snapshot
        current = {info.pid: (info.syscalls, info.writes, info.syncs) for info in snapshot.processes}
        samples = self._samples
        samples.append((now, snapshot.events, current))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        then, events_then, counts_then = samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return
        zero = (0, 0, 0)
        self._rates = {pid: tuple((a - b) / elapsed for a, b in zip(counts, counts_then.get(pid, zero)))
                       for pid, counts in current.items()}
        self._event_rate = (snapshot.events - events_then) / elapsed

    def _now_t(self) -> float:
        """Now on the events' clock (their `t`)."""
        return (time.monotonic_ns() - self.clock_origin_ns) / 1e9

    def _screen(self) -> Group:
        width, height = self.console.size
        body = max(height - 2, 6)            # two lines of status at the bottom
        if self.help_shown:
            keys = self._keys_help()
            shown = [help_panel(keys, width)]
            shown[0].height = len(keys) + 2
        else:
            entries = self._process_entries()
            findings = self._shown_findings()
            output = self.output.tail(body) if self.output and self.output_shown else None
            wanted = {"processes": len(entries), "files": len(self.snapshot.files)}
            if output is not None:
                wanted["output"] = len(output)
            wanted["findings"] = len(findings)
            rows = self._allot(body, wanted)
            shown = [process_panel(entries, self._rates, self.known_argv, rows["processes"], width),
                     self._file_rows(rows["files"], width)]
            if output is not None:
                shown.append(output_panel(output[-rows["output"]:]))
            shown.append(self._findings_panel(findings, rows["findings"], width))
            for panel, name in zip(shown, rows):
                panel.height = rows[name] + PANEL_FRAMES[name]
        # The status stays on the last two lines, whatever the panels leave above it.
        spare = height - 2 - sum(panel.height for panel in shown)
        return Group(*shown, *([Text("\n" * (spare - 1))] if spare > 0 else []), self._status())

    @staticmethod
    def _allot(body: int, wanted: dict) -> dict:
        """Rows for each panel (in wanted's order, without their frames) in body lines: each shows
        what it has, one row at least; processes, output and findings a quarter of body each at
        first, the files what they leave; then what is left goes to the output (more of its tail),
        the findings and the processes. On a terminal too small for that, the output gives way
        first, then the findings, the processes and the files."""
        share = max(body // 4, 1)
        rows = {name: max(min(count, share), 1) for name, count in wanted.items()}
        rows["files"] = 1
        frames = sum(PANEL_FRAMES[name] for name in rows)
        rows["files"] = max(min(wanted["files"], body - frames - sum(rows.values()) + 1), 1)
        spare = body - frames - sum(rows.values())
        for name in ("output", "findings", "processes"):
            if name in rows and spare > 0:
                more = min(spare, wanted[name] - rows[name])
                if more > 0:
                    rows[name] += more
                    spare -= more
        for name in ("output", "findings", "processes", "files"):
            if name in rows and spare < 0:
                less = min(-spare, rows[name] - 1)
                rows[name] -= less
                spare += less
        return rows

    def _status(self, settled: bool = False) -> Text:
        snapshot = self.snapshot
        elapsed = (self.stopped_at or time.monotonic()) - self.started
        lost = snapshot.lost_events
        parts = [Text(format_duration(elapsed), style="bold"),
                 Text(f"{snapshot.events:,} events" if settled
                      else f"{format_rate(self._event_rate)} events/s ({snapshot.events:,})"),
                 Text(f"{lost:,} lost", style="bold red" if lost else ""),
                 Text(f"scope: {self.scope}")]
        if self.injections:
            fired = snapshot.injections_fired
            parts.append(Text("inject: " + ", ".join(f"{printable(spec)} (fired {fired.get(spec, 0)})"
                                                     for spec in self.injections)))
        if self.output:
            parts.append(Text(printable(self.output.status()), style="bold red" if self.output.dropped else ""))
        line = Text(" | ").join(parts)
        if settled:
            return line
        if self.stop_requested and self.mode == "run":
            if self.must_wait:
                said = f"tracing stopped; waiting for the command: {self.must_wait} (Ctrl-C reaches it)"
            elif self.waiting:
                said = "tracing stopped; waiting for the command to finish (Ctrl-C reaches it) | q leave"
            else:
                said = "tracing stopped; the command runs on untraced | w wait for it | q leave"
            keys = Text(said, style="bold yellow")
        else:
            stop = "q detach" if self.mode == "attach" else "q stop tracing"
            output = " | o output" if self.output else ""
            keys = Text(f"{stop} | ? keys | f findings: {FILTER_LABEL[self.min_severity]} | "
                        f"p {'resume' if self.paused else 'pause'}{output} | up/down scroll files", style="dim")
        if self.paused:
            keys = Text.assemble(("PAUSED ", "bold reverse"), keys)
        status = Text("\n").join([line, keys])
        status.no_wrap, status.overflow = True, "ellipsis"    # two lines, whatever the width
        return status

    def _keys_help(self) -> list[tuple[str, str]]:
        keys = [("q", "detach; the processes run on" if self.mode == "attach" else
                 "stop tracing; the command runs on untraced")]
        if self.mode == "run":
            keys += [("  then w", "wait for the command to finish"),
                     ("  then q", "leave; the command runs on, its output still logged")]
        keys += [("f", "findings shown: all, warning and error, error only"),
                 ("p", "pause the display (tracing goes on)")]
        if self.output:
            keys.append(("o", "hide or show the command's output"))
        keys += [("up/down, k/j", "scroll the files"), ("PgUp/PgDn", "scroll the files by 10"),
                 ("Home/End, g/G", "the first or the last files"), ("?", "these keys"),
                 ("Ctrl-C", "as without the dashboard (run: to the command)")]
        return keys

    def _process_entries(self) -> list:
        return process_entries(self.snapshot.processes, {finding.pid for finding in self.snapshot.findings})

    def _process_rows(self, rows: int, width: int, totals: bool = False) -> Panel:
        return process_panel(self._process_entries(), self._rates, self.known_argv, rows, width, totals)

    def _file_rows(self, rows: int, width: int) -> Panel:
        snapshot = self.snapshot
        rows = max(rows, 1)
        self.scroll = min(self.scroll, max(len(snapshot.files) - rows, 0))
        return files_panel(snapshot.files, self.scroll, rows, width, snapshot.marked, self._now_t(), self.cwd)

    def _shown_findings(self) -> list:
        limit = SEVERITY_RANK[self.min_severity]
        return [f for f in self.snapshot.findings if SEVERITY_RANK[f.severity] <= limit]

    def _findings_panel(self, shown: list, rows: int, width: int) -> Panel:
        return findings_panel(shown, len(self.snapshot.findings), self.min_severity, rows, width)
