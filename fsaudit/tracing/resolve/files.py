"""Decoders of the calls that make, copy and drop fds: open and its kin,
memfd_create, close, close_range, dup, fcntl. Whether an open created its
file is read here, from the file's birth time."""

from __future__ import annotations

import ctypes
import stat
import struct

from ..record import FS_ENCODING, FS_ERRORS
from ..syscalls import (
    AT_FDCWD, CLOSE_RANGE_CLOEXEC, F_DUPFD, F_DUPFD_CLOEXEC, F_SETFD, F_SETFL, FD_CLOEXEC, O_ACCMODE, O_APPEND,
    O_CLOEXEC, O_CREAT, O_DIRECT, O_DIRECTORY, O_EXCL, O_NONBLOCK, O_TRUNC, O_WRONLY, open_flag_names,
)
from .fdtable import Fd, ProcessTable, kind_of_link, s32

_libc = ctypes.CDLL(None, use_errno=True)
SYS_STATX, STATX_TYPE, STATX_BTIME, AT_STATX_DONT_SYNC = 332, 0x1, 0x800, 0x4000
# Filesystem timestamps are coarse (one scheduler tick behind at most), so a
# birth time this close before the call's entry still counts as "during".
COARSE_CLOCK_SLACK_NS = 10_000_000


# struct statx's stx_mask (u32) at offset 0, stx_mode (u16) at 28, stx_btime (s64 sec, u32 nsec) at 80.
STATX_FIELDS = struct.Struct("=I24xH50xqI")


class Statx:
    """statx(2) of one path at a time, into a buffer of its own: made once, read with one unpack."""

    def __init__(self) -> None:
        self._buf = ctypes.create_string_buffer(256)

    def type_and_birth(self, path: str) -> tuple[int | None, int | None]:
        """The file's type (S_IFMT bits) and birth time in realtime ns, each None when
        unknown (no such file; a filesystem that keeps no birth time)."""
        buf = self._buf
        if _libc.syscall(SYS_STATX, AT_FDCWD, path.encode(FS_ENCODING, FS_ERRORS), AT_STATX_DONT_SYNC,
                         STATX_TYPE | STATX_BTIME, buf) != 0:
            return None, None
        mask, mode, sec, nsec = STATX_FIELDS.unpack_from(buf)
        kind = stat.S_IFMT(mode) if mask & STATX_TYPE else None
        if not mask & STATX_BTIME:
            return kind, None
        return kind, sec * 1_000_000_000 + nsec


class FileDecoders(ProcessTable):
    """open, creat, openat, openat2, memfd_create, close, close_range, dup, dup2, dup3, fcntl."""

    _entry_ns: int              # Resolver.resolve: entry time of the syscall being resolved
    realtime_offset_ns: int     # Resolver: realtime minus monotonic, at start
    statx: Statx                # Resolver's

    def _open_common(self, proc, event, ok, ret, dirfd, path, flags, mode, out):
        abspath = self._abs(proc, dirfd, path, event["tid"], event["t"], out)
        event["path"], event["flags"], event["mode"] = abspath, open_flag_names(flags), mode
        if ok:
            # Read-only opens are how runtimes open a directory to fsync it: the file says what it is.
            kind = "dir" if flags & O_DIRECTORY else "file" if flags & (O_CREAT | O_ACCMODE) else kind_of_link(abspath)
            creation = None
            if kind == "file" and flags & (O_CREAT | O_TRUNC):
                if flags & O_CREAT and flags & O_EXCL:
                    creation = "created"    # the kernel's own answer: it fails such an open of any existing name
                else:
                    kind, creation = self._creation(abspath)
            proc.fds[ret] = Fd(abspath, kind, flags)
            event["fd"], event["kind"] = ret, kind
            if creation is not None:
                event[creation] = True

    def _creation(self, path: str) -> tuple[str, str | None]:
        """The kind of file a write open with O_CREAT or O_TRUNC opened (a FIFO's `>` is
        no file's), and whether the open created it, from its birth time against the
        call's entry: "created", "existed", or None when unknown.

        The kernel side cannot stat, and after the call the old size of an
        O_TRUNC'ed file is gone; a file born before the call existed."""
        file_type, born = self.statx.type_and_birth(path)
        if file_type is not None and file_type != stat.S_IFREG:
            return "other", None
        if born is None:
            return "file", None
        entry = self._entry_ns + self.realtime_offset_ns
        return "file", "created" if born >= entry - COARSE_CLOCK_SLACK_NS else "existed"

    def _on_open(self, proc, event, ok, ret, a, path, path2, out):
        self._open_common(proc, event, ok, ret, AT_FDCWD, path, a[1], a[2], out)

    def _on_creat(self, proc, event, ok, ret, a, path, path2, out):
        self._open_common(proc, event, ok, ret, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, a[1], out)

    def _on_openat(self, proc, event, ok, ret, a, path, path2, out):
        self._open_common(proc, event, ok, ret, s32(a[0]), path, a[2], a[3], out)

    _on_openat2 = _on_openat

    def _on_memfd_create(self, proc, event, ok, ret, a, path, path2, out):
        if ok:
            proc.fds[ret] = Fd("memfd", "anon")
            event["fd"] = ret

    def _on_close(self, proc, event, ok, ret, a, path, path2, out):
        fd = s32(a[0])
        self._fd_event(proc, event, fd, out)
        if "injected" not in event:   # a real close frees the fd even when it fails
            proc.fds.pop(fd, None)

    def _on_close_range(self, proc, event, ok, ret, a, path, path2, out):
        first, last, flags = a[0], a[1], a[2]
        event.update(first=first, last=min(last, 1 << 31), flags=flags)
        if ok:
            hit = [fd for fd in proc.fds if first <= fd <= last]
            if flags & CLOSE_RANGE_CLOEXEC:
                for fd in hit:
                    proc.fds[fd].flags |= O_CLOEXEC
                event["closed"] = []
            else:
                event["closed"] = [{"fd": fd, "path": proc.fds[fd].path, "kind": proc.fds[fd].kind} for fd in hit]
                for fd in hit:
                    del proc.fds[fd]

    def _dup(self, proc, event, ok, ret, old, cloexec, out):
        entry = self._fd_event(proc, event, old, out)
        event["newfd"] = ret if ok else None
        if ok:
            flags = (entry.flags & ~O_CLOEXEC) | (O_CLOEXEC if cloexec else 0)
            proc.fds[ret] = Fd(entry.path, entry.kind, flags, entry.family)

    def _on_dup(self, proc, event, ok, ret, a, path, path2, out):
        self._dup(proc, event, ok, ret, s32(a[0]), False, out)

    def _on_dup2(self, proc, event, ok, ret, a, path, path2, out):
        self._dup(proc, event, ok, ret, s32(a[0]), False, out)

    def _on_dup3(self, proc, event, ok, ret, a, path, path2, out):
        self._dup(proc, event, ok, ret, s32(a[0]), bool(a[2] & O_CLOEXEC), out)

    def _on_fcntl(self, proc, event, ok, ret, a, path, path2, out):
        fd, cmd = s32(a[0]), a[1]
        if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
            self._dup(proc, event, ok, ret, fd, cmd == F_DUPFD_CLOEXEC, out)
        elif cmd == F_SETFL:
            entry = self._fd_event(proc, event, fd, out)
            event["flags"] = open_flag_names(a[2])
            if ok:   # F_SETFL can change O_APPEND/O_DIRECT/O_NONBLOCK, not O_SYNC
                settable = O_APPEND | O_DIRECT | O_NONBLOCK
                entry.flags = (entry.flags & ~settable) | (a[2] & settable)
        elif cmd == F_SETFD:
            entry = proc.fds.get(fd)
            if entry is not None and ok:
                entry.flags = (entry.flags | O_CLOEXEC) if a[2] & FD_CLOEXEC else (entry.flags & ~O_CLOEXEC)
            event.update(fd=fd, cmd="F_SETFD")
        else:
            event.update(fd=fd, cmd=cmd)
