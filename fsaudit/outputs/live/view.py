"""The interface the trace loop drives, and the view without a terminal: one progress line on stderr."""

from __future__ import annotations

import time

from ...analysis.snapshot import Snapshot, take_snapshot
from .format import format_duration, plural

PROGRESS_AFTER_S = 2.0           # no progress line for shorter runs
PROGRESS_TTY_S = 0.5             # redrawn in place this often on a terminal
PROGRESS_PIPE_S = 10.0           # repeated this often, one line each, into a pipe or file


class NoTerminal(Exception):
    """--live was asked for and there is no terminal to draw on."""



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
        """After `q` in run: the command goes on untraced; return when it has exited, or when
        the view lets it run on (its returncode is then None)."""
        child.wait()

    def stop(self) -> None:
        """Give the terminal back (idempotent; also on error paths)."""

    def settle(self) -> None:
        """Tracing is over and every event delivered: show the final state, before the summary."""

    def finished(self, status: int) -> None:
        """Every output is written and fsaudit exits with status: say what remains (run)."""



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
        self.snapshot: Snapshot | None = None

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
        shot = self.snapshot = take_snapshot(self.engine, self.snapshot, keep=0)
        line = (f"fsaudit: {self.doing} {format_duration(now - self.started)}: {plural(shot.events, 'event')}, "
                f"{plural(shot.files_reported, 'file')}, {plural(shot.finding_count, 'finding')}")
        if shot.lost_events:
            line += f", {shot.lost_events:,} events lost"
        if self.in_place:
            self.stream.write("\r" + line.ljust(self.shown_width))
            self.shown_width = max(self.shown_width, len(line))
        else:
            self.stream.write(line + "\n")
            self.shown_width = len(line)
        self.stream.flush()
