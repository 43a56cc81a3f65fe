"""The traced command's terminal while the dashboard has the real one: a pty copied into a log file."""

from __future__ import annotations

import os
import re
import select
import struct
import subprocess
import sys
import tempfile
import termios
import threading
from collections import deque
from fcntl import ioctl

from ..printable import printable
from .format import format_bytes

TAIL_LINES = 100                 # the latest lines kept for the Output panel
LINE_KEPT = 1024                 # the bytes kept of each, its end (a progress bar redrawn with \r)
# Escape sequences the command writes for its terminal (CSI, OSC, and two-byte ones): left out
# of the Output panel, which shows the text, not its colours or cursor moves.
TERMINAL_CONTROL = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|.)")

# The copy once fsaudit leaves a command running after `q`: a process of its own (new session,
# no terminal) that reads the pty to its end, so the command never finds its stdout gone, and
# writes the log while it can. argv: the pty's master fd, the log's fd (-1: none).
DRAIN = """\
import os, sys
master, log = int(sys.argv[1]), int(sys.argv[2])
while True:
    try:
        data = os.read(master, 65536)
    except OSError:
        break
    if not data:
        break
    while data and log >= 0:
        try:
            data = data[os.write(log, data):]
        except OSError:
            os.close(log)
            log = -1
if log >= 0:
    os.fsync(log)
"""


class CommandOutput:
    """Where the traced command writes while the dashboard has the terminal: a
    pty, so the command still sees a terminal (isatty, line-buffered stdio, the
    same analysis as a run without the dashboard), copied by a thread into a
    log file the dashboard names, its latest lines kept for the Output panel.

    The pty is read to its end whatever happens to the log or to fsaudit: a
    command whose output is not read blocks on its next write, and one whose
    pty is closed gets EIO. Once the log cannot be created or written (ENOSPC,
    EIO, EFBIG...), the rest is counted as dropped. When fsaudit leaves before
    the pty's end (a command left running after `q`, a child holding it), a
    process of its own takes the copy over (DRAIN)."""

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
            # 0600, created with O_EXCL: never through a symlink or into another's file.
            self.log_fd, self.path = tempfile.mkstemp(prefix="fsaudit-output-", suffix=".log")
        except OSError as exc:              # mkstemp's own error, or gettempdir's "no usable directory"
            where = f" in {os.path.dirname(exc.filename)}" if exc.filename else ""
            self.error = f"cannot create a log{where}: {exc.strerror or exc}"
        # Keys typed at the dashboard are for the dashboard: a command that
        # would read the same terminal reads /dev/null instead.
        self.stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC) if stdin_is_screen else 0
        self.bytes = 0                       # written to the log (by fsaudit)
        self.dropped = 0                     # read from the pty, not written
        self.thread: threading.Thread | None = None
        self.handed_over = False             # the copy goes on in a process of its own (DRAIN)
        self._release_read, self._release = os.pipe()    # a byte here: the thread stops, for DRAIN
        self._tail: deque = deque(maxlen=TAIL_LINES)
        self._line = b""                     # the latest line, not ended yet
        self._tail_lock = threading.Lock()

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
            if self._release_read in select.select([self.master, self._release_read], [], [])[0]:
                return                       # master and log go to DRAIN as they are
            try:
                data = os.read(self.master, 65536)
            except OSError:                  # EIO: every process holding the pty has closed it
                break
            if not data:
                break
            self._keep_tail(data)
            self._log(memoryview(data))
        if self.log_fd is not None:
            os.close(self.log_fd)
            self.log_fd = None
        os.close(self.master)
        self.master = None

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

    def _keep_tail(self, data: bytes) -> None:
        """The latest lines, each cut to its last LINE_KEPT bytes; split only as far back as they go."""
        pieces = data.rsplit(b"\n", TAIL_LINES)
        with self._tail_lock:
            if len(pieces) > 1:
                pieces[0] = self._line + pieces[0]
                self._tail.extend(piece[-LINE_KEPT:] for piece in pieces[:-1])
                self._line = b""
            self._line = (self._line + pieces[-1])[-LINE_KEPT:]

    def tail(self, lines: int) -> list[str]:
        """The command's latest lines as its terminal would leave them (what follows the last
        carriage return, without escape sequences), printable, the latest last."""
        with self._tail_lock:
            kept = list(self._tail)
            if self._line:
                kept.append(self._line)
        shown = []
        for raw in kept[-lines:] if lines > 0 else ():
            text = TERMINAL_CONTROL.sub("", raw.decode("utf-8", "surrogateescape"))
            shown.append(printable(text.rstrip("\r").rsplit("\r", 1)[-1].expandtabs()))
        return shown

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
        if self.handed_over:
            text += ", more to come"
        return text + ")"

    def finish(self, command_running: bool = False) -> None:
        """Let the copy catch up with a command that has exited; if the pty is still open (the
        command left running, a child of it holding the pty), hand the copy over to DRAIN. An
        empty log that nothing can write any more is removed."""
        if self.thread is not None:
            self.thread.join(timeout=0 if command_running else 1.0)
            if self.thread.is_alive():
                self._hand_over()
        if self._release is not None:
            os.close(self._release_read)
            os.close(self._release)
            self._release = self._release_read = None
        received = self.bytes or self.dropped
        if self.path and not received and not self.handed_over:
            os.unlink(self.path)
            self.path = None

    def _hand_over(self) -> None:
        os.write(self._release, b"x")
        self.thread.join()
        if self.master is None:              # the copy reached the pty's end meanwhile
            return
        fds = [self.master] + ([self.log_fd] if self.log_fd is not None else [])
        try:
            subprocess.Popen([sys.executable, "-I", "-S", "-c", DRAIN, str(self.master),
                              str(-1 if self.log_fd is None else self.log_fd)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             pass_fds=fds, start_new_session=True)
            self.handed_over = True
        except OSError as exc:
            self.error = f"the copy could not go on after fsaudit: {exc.strerror or exc}"
        for fd in fds:
            os.close(fd)
        self.master = self.log_fd = None

    def conclude(self, keep: bool) -> str | None:
        """The log kept (fsynced, and named in the line returned) or removed, once the run is
        over: kept when asked (keep), when the run did not succeed, or while DRAIN still writes it."""
        if self.path is None:
            return None
        size = format_bytes(self.bytes)
        if self.handed_over:
            return f"fsaudit: the command's output goes on into {self.path} ({size} so far)"
        if not keep:
            os.unlink(self.path)
            return f"fsaudit: the command's output ({size}) was removed: the run succeeded (--keep-output keeps it)"
        line = f"fsaudit: the command's output ({size}) is in {self.path}"
        try:                             # complete now: on disk once it is named, as fsaudit's other files
            with open(self.path, "rb") as log:
                os.fsync(log.fileno())
            directory = os.open(os.path.dirname(self.path), os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            line += f" (not synced: {exc.strerror or exc})"
        return line
