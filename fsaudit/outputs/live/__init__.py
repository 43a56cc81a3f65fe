"""What a trace shows while it runs: a terminal dashboard, or one progress line on stderr.

Both are driven by the tracer's poll loop (tick() after each poll) and read
the engine only at refresh time, through a snapshot (fsaudit.analysis.snapshot:
plain records, taken by one function), so they add no work per event and hold
no engine object; rates come from sampling the snapshots' counters. Neither
decides anything: what is dirty, synced or a finding is the engine's word.

  view.py            the View the trace loop drives; ProgressLine, the view without a terminal
  dashboard.py       the Dashboard: the terminal, keys, refreshes (a snapshot each) and rates
  panels.py          its panels (processes, files, findings), drawn from a snapshot's rows
  command_output.py  the pty the command writes to while the dashboard has the terminal
  format.py          sizes, rates, ages, paths, the fixed-width grid
"""

from __future__ import annotations

import os
import sys

from .command_output import CommandOutput
from .dashboard import Dashboard
from .format import format_bytes, shorten_path
from .view import NoTerminal, ProgressLine, View

__all__ = ["CommandOutput", "Dashboard", "NoTerminal", "ProgressLine", "View", "format_bytes", "open_view",
           "shorten_path"]


def open_view(live: bool | None, session, cwd: str, keep_output: bool = False) -> View:
    """The dashboard when live is True, or by default when stdout is a terminal; else the progress line.
    keep_output: the dashboard's log of the command's output stays after a run that succeeded.

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
    return Dashboard(session, screen, keys_fd, cwd, keep_output)
