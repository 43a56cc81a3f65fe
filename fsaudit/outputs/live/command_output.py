"""The traced command's terminal while the dashboard has the real one: a pty copied into a log file."""

from __future__ import annotations

import os
import struct
import tempfile
import termios
import threading
from fcntl import ioctl

from .format import format_bytes


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

