"""The files fsaudit writes: reports, event logs and the summary.

Every output is opened before tracing starts, so a bad path is found before
the command runs. A regular file is written the way fsaudit tells programs
to: a temporary file in the same directory (created 0600 with O_EXCL and
O_NOFOLLOW), fsync, rename over the name, fsync the directory; the name
holds the previous file or the whole new one, never a part. fsaudit does
not write through a symbolic link found at the name, nor replace a file
another user owns. Under sudo, the user who ran it is not another user: a
file of theirs is replaced and stays theirs, and a new file is theirs too
(SUDO_UID, SUDO_GID), as it would be without sudo. A name that is a
character device or a FIFO (/dev/null, a named pipe) is written directly,
as are `-` (stdout) and /dev/stdout, /dev/stderr, /dev/fd/N (descriptors
fsaudit was given, such as a shell's `>(...)`).
"""

from __future__ import annotations

import atexit
import io
import os
import re
import secrets
import stat
import sys
from typing import IO

from .printable import printable

STDOUT = "-"
# fsaudit's own descriptors: symbolic links, but not ones another user can plant.
_OWN_DESCRIPTOR = re.compile(r"/dev/(stdout|stderr|fd/(\d+))|/proc/self/fd/(\d+)")


class OutputError(Exception):
    """An output that cannot be opened or written; the message is one line naming it."""


class Output:
    """An opened output: write text to `stream`, then commit() (or discard() on failure)."""

    def __init__(self, label: str, stream: IO[str]) -> None:
        self.label = label
        self.stream = stream

    def commit(self) -> None:
        """Make what was written final; OutputError if it cannot be."""
        try:
            self.stream.flush()
        except OSError as exc:
            self.discard()
            raise self.error(exc) from None

    def discard(self) -> None:
        """Give up on this output (idempotent)."""

    def error(self, exc: OSError) -> OutputError:
        return OutputError(f"{self.label}: cannot write: {exc.strerror or exc}")


class StandardStream(Output):
    """stdout or stderr, fsaudit's own: flushed, never closed."""

    def __init__(self, label: str, stream: IO[str]) -> None:
        # Paths that are not UTF-8 reach the text as surrogate escapes: write
        # their original bytes back rather than fail. (A stream put in place of
        # sys.stdout by a caller, such as a test harness, may not have it.)
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
        super().__init__(label, stream)

    def discard(self) -> None:
        # What is still buffered would fail again when Python flushes the
        # stream at exit (a second message, "Exception ignored"): from here
        # on the stream's descriptor leads nowhere.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


class DirectFile(Output):
    """A character device, FIFO or inherited descriptor: written in place."""

    def commit(self) -> None:
        super().commit()
        self.discard()

    def discard(self) -> None:
        try:
            self.stream.close()
        except OSError:       # what could not be flushed is already reported
            pass


_PENDING: set["ReplacedFile"] = set()     # temporary files not yet renamed or removed


class ReplacedFile(Output):
    """A regular file, replaced whole by renaming a temporary file over it."""

    def __init__(self, label: str, dir_fd: int, name: str, owner: tuple[int, int] | None = None) -> None:
        """owner: the uid and gid the file is given, None for fsaudit's own."""
        self.dir_fd, self.name = dir_fd, name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        while True:
            # Short enough for NAME_MAX whatever the final name's length.
            self.temp_name = f".{name[:64]}.{secrets.token_hex(4)}.fsaudit-tmp"
            try:
                fd = os.open(self.temp_name, flags, 0o600, dir_fd=dir_fd)
                break
            except FileExistsError:
                continue
        if owner is not None:
            try:
                os.fchown(fd, *owner)      # the file fsaudit just created, never a name someone could swap
            except OSError:
                os.close(fd)
                os.unlink(self.temp_name, dir_fd=dir_fd)
                raise
        super().__init__(label, io.open(fd, "w", encoding="utf-8", errors="surrogateescape"))
        _PENDING.add(self)

    def commit(self) -> None:
        try:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()
            # rename(2) replaces whatever is at the name (a symbolic link
            # planted since the check included): it never writes through it.
            os.rename(self.temp_name, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
            _PENDING.discard(self)
            os.fsync(self.dir_fd)
        except OSError as exc:
            self.discard()
            raise self.error(exc) from None
        finally:
            self._close_dir()

    def discard(self) -> None:
        if self in _PENDING:
            _PENDING.discard(self)
            try:
                self.stream.close()
            except OSError:
                pass
            try:
                os.unlink(self.temp_name, dir_fd=self.dir_fd)
            except OSError:
                pass
        self._close_dir()

    def _close_dir(self) -> None:
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1


@atexit.register
def _remove_unfinished() -> None:
    """fsaudit ends without committing (an error before or during tracing): no temporary files left behind."""
    for output in list(_PENDING):
        output.discard()


def sudo_user() -> tuple[int, int] | None:
    """The uid and gid of the user who ran fsaudit through sudo (root, with sudo's
    SUDO_UID and SUDO_GID naming someone else), else None."""
    uid, gid = os.environ.get("SUDO_UID", ""), os.environ.get("SUDO_GID", "")
    if os.geteuid() != 0 or not (uid.isdigit() and gid.isdigit()) or int(uid) == 0:
        return None
    return int(uid), int(gid)


def _descriptor(path: str) -> int | None:
    """The descriptor of fsaudit's that path names, if it names one."""
    if path == STDOUT:
        return 1
    own = _OWN_DESCRIPTOR.fullmatch(path)
    if not own:
        return None
    return {"stdout": 1, "stderr": 2}.get(own.group(1)) or int(own.group(2) or own.group(3))


def open_output(option: str, path: str) -> Output:
    """Open (create) the output for `option PATH` now; OutputError with one line if it cannot be written."""
    label = f"{option} {printable(path)}"
    if path == STDOUT:
        return StandardStream(label, sys.stdout)
    number = _descriptor(path)
    if number is not None:
        try:
            fd = os.dup(number)
        except OSError as exc:
            raise OutputError(f"{label}: {exc.strerror}") from None
        return DirectFile(label, io.open(fd, "w", encoding="utf-8", errors="surrogateescape"))
    directory, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise OutputError(f"{label}: is a directory")
    try:
        dir_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise OutputError(f"{label}: {exc.strerror}") from None
    try:
        return _open_in(label, dir_fd, name)
    except OSError as exc:
        os.close(dir_fd)
        raise OutputError(f"{label}: {exc.strerror}") from None
    except OutputError:
        os.close(dir_fd)
        raise


def _open_in(label: str, dir_fd: int, name: str) -> Output:
    invoker = sudo_user()
    try:
        existing = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return ReplacedFile(label, dir_fd, name, invoker)
    mode = existing.st_mode
    if stat.S_ISLNK(mode):
        raise OutputError(f"{label}: is a symbolic link; fsaudit does not write through one")
    if stat.S_ISDIR(mode):
        raise OutputError(f"{label}: is a directory")
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        os.close(dir_fd)
        return DirectFile(label, io.open(fd, "w", encoding="utf-8", errors="surrogateescape"))
    if not stat.S_ISREG(mode):
        raise OutputError(f"{label}: is neither a regular file, a character device nor a FIFO")
    if existing.st_uid == os.geteuid():
        return ReplacedFile(label, dir_fd, name)
    if invoker is not None and existing.st_uid == invoker[0]:
        return ReplacedFile(label, dir_fd, name, (existing.st_uid, existing.st_gid))
    raise OutputError(f"{label}: belongs to another user (uid {existing.st_uid}); fsaudit does not replace it")


def open_outputs(requested: dict[str, str], stdout_taken_by: str | None = None) -> dict[str, Output]:
    """Open every `option: PATH` requested, or none (OutputError). stdout_taken_by:
    the output that goes to stdout unless requested elsewhere (the summary of
    `report`)."""
    on_stdout = [option for option, path in requested.items() if _descriptor(path) == 1]
    if stdout_taken_by and stdout_taken_by not in requested:
        on_stdout.append(stdout_taken_by)
    if len(on_stdout) > 1:
        raise OutputError(f"{' and '.join(on_stdout)} would both go to stdout: send one elsewhere")
    files: dict[str, str] = {}
    for option, path in requested.items():
        if _descriptor(path) is None:
            real = os.path.realpath(path)
            if real in files and not _written_in_place(real):
                raise OutputError(f"{files[real]} and {option} name the same file {printable(path)}")
            files[real] = option
    opened: dict[str, Output] = {}
    try:
        for option, path in requested.items():
            opened[option] = open_output(option, path)
    except OutputError:
        for output in opened.values():
            output.discard()
        raise
    return opened


def _written_in_place(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
