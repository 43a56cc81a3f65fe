"""Resolver: raw kernel records in kernel order, resolved event dicts out."""

from __future__ import annotations

import ctypes
import os
import time

from ..record import (
    EV_AUXV, EV_EXEC, EV_EXIT, EV_FORK, EV_PYCODE, EV_STDIO_LOST, EV_WRITE_RUN, PY_FRAMES, RECORD_FIELDS,
    STACK_WORDS, InjectedRecord, Record, decode_path,
)
from ..syscalls import (
    AT_FDCWD, AT_REMOVEDIR, CLONE_FILES, CLOSE_RANGE_CLOEXEC, F_DUPFD, F_DUPFD_CLOEXEC, F_SETFD, F_SETFL,
    FD_CLOEXEC, MAP_FLAGS, MS_FLAGS, O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECT, O_DIRECTORY,
    O_NONBLOCK, O_TRUNC, O_WRONLY, PROT_EXEC, PROT_FLAGS, RENAME_FLAGS, RWF_FLAGS, SFR_FLAGS, SYSCALLS,
    flag_names, open_flag_names, ret_value,
)
from ..stacks.cpython import PyCodes
from ..runtimes import Image
from ..stacks.native import AddressSpace, Symbolizer
from .fdtable import Fd, Process, ProcessTable, kind_of_link, s32

# What the dynamic loader does after exec, before the program's own code runs
# (read-only opens, maps, closes): a runtime is decided at the first call that is not.
LOADER_SYSCALLS = frozenset({"open", "openat", "openat2", "mmap", "munmap", "close"})

_libc = ctypes.CDLL(None, use_errno=True)
SYS_STATX, STATX_BTIME, AT_STATX_DONT_SYNC = 332, 0x800, 0x4000
# Filesystem timestamps are coarse (one scheduler tick behind at most), so a
# birth time this close before the call's entry still counts as "during".
COARSE_CLOCK_SLACK_NS = 10_000_000


def birth_time_ns(path: str) -> int | None:
    """statx(2) birth time in realtime ns, or None where the filesystem has none."""
    buf = ctypes.create_string_buffer(256)
    if _libc.syscall(SYS_STATX, AT_FDCWD, os.fsencode(path), AT_STATX_DONT_SYNC, STATX_BTIME, buf) != 0:
        return None
    mask = int.from_bytes(buf.raw[0:4], "little")
    if not mask & STATX_BTIME:
        return None
    # struct statx: stx_btime (struct statx_timestamp: s64 sec, u32 nsec) at offset 80.
    sec = int.from_bytes(buf.raw[80:88], "little", signed=True)
    nsec = int.from_bytes(buf.raw[88:92], "little")
    return sec * 1_000_000_000 + nsec


def _loader_like(event: dict) -> bool:
    name = event["syscall"]
    if name not in LOADER_SYSCALLS:
        return False
    flags = event.get("flags", ())
    return not name.startswith("open") or (flags[:1] == ["O_RDONLY"] and "O_CREAT" not in flags)


class Resolver(ProcessTable):
    """Stateful: feed raw records in kernel order, get resolved event dicts back."""

    def __init__(self, t0_ns: int, symbolizer: Symbolizer | None = None) -> None:
        self.t0_ns = t0_ns
        self.symbolizer = symbolizer
        self.pycodes = PyCodes() if symbolizer else None
        self.realtime_offset_ns = time.time_ns() - time.monotonic_ns()
        self._entry_ns = 0   # entry time of the syscall being resolved
        # nr -> (name, decoder or None), built once: the per-event path does one lookup.
        self._decoders = {nr: (name, getattr(self, "_on_" + name, None)) for nr, name in SYSCALLS.items()}
        self.procs: dict[int, Process] = {}

    def _t(self, ns: int) -> float:
        return round((ns - self.t0_ns) / 1e9, 6)

    def _stack(self, proc: Process, stack: tuple, event: dict) -> None:
        """--stacks: the record's user stack, symbolized, as the event's `stack`.
        A CPython process's Python frames replace the interpreter's own: the
        native frames are kept down to the first one in the executable."""
        if proc.space is None or not any(stack):
            return
        words, py_code = stack[:STACK_WORDS], stack[STACK_WORDS:STACK_WORDS + PY_FRAMES]
        python = self.pycodes.frames(proc.pid, py_code, stack[STACK_WORDS + PY_FRAMES:]) if py_code[0] else []
        until = proc.image.exe if python and proc.image else None
        frames = self.symbolizer.frames(proc.pid, proc.space, words, until=until) + python
        if frames:
            event["stack"] = frames

    def _auxv(self, proc: Process, entry: int, base: int) -> None:
        """Where exec put the program (AT_ENTRY, against its ELF entry) and its loader (AT_BASE)."""
        proc.space = AddressSpace()
        exe = proc.image.exe if proc.image else None
        image = self.symbolizer.image(exe) if exe else None
        if image is None:
            return
        proc.space.map_image(image, entry - image.entry)
        loader = self.symbolizer.image(image.interp) if image.interp and base else None
        if loader is not None:
            proc.space.map_image(loader, base)

    def announce_running(self, pid: int, t: float) -> list[dict]:
        """The runtime of a process traced from the middle of its life (attach),
        whose libraries are all mapped already."""
        proc = self.process(pid)
        proc.image = Image.running(pid)
        out: list[dict] = []
        self._runtime(proc, pid, t, out)
        return out

    def _open_kind(self, path: str, flags: int) -> str:
        if flags & O_DIRECTORY:
            return "dir"
        if flags & (O_CREAT | O_ACCMODE):
            return "file"
        # Read-only opens are how runtimes open a directory to fsync it.
        return kind_of_link(path)

    def resolve(self, rec: tuple) -> list[dict]:
        """One raw record -> zero or more resolved events (inherit events first)."""
        stack = None
        if len(rec) > RECORD_FIELDS:
            stack, rec = rec[RECORD_FIELDS:], rec[:RECORD_FIELDS]
        # Record's fields, in its order: unpacking names them at the least cost (tests/test_ringbuf.py).
        ts, ts_first, pid, tid, nr, _epoch, ret, a0, a1, a2, a3, a4, a5, raw1, raw2 = rec
        out: list[dict] = []
        t = self._t(ts)
        proc = self.process(pid)
        if nr == EV_AUXV:
            self._auxv(proc, a0, a1)
            return out
        if nr == EV_PYCODE:
            self.pycodes.add(pid, Record._make(rec))
            return out
        pending_runtime = proc.image is not None and not proc.image.decided
        if pending_runtime and nr in (EV_WRITE_RUN, EV_FORK, EV_STDIO_LOST, EV_EXIT):
            self._runtime(proc, tid, t, out)    # none of these is the dynamic loader's doing
        if nr == EV_WRITE_RUN:
            fd = s32(a0)
            entry = self._fd(proc, fd, tid, t, out)
            event = {"t": t, "pid": pid, "tid": tid, "syscall": "write", "fd": fd,
                     "path": entry.path, "kind": entry.kind, "calls": a1, "bytes": a2,
                     "size_max": a3, "t_first": self._t(ts_first), "ret": a2}
            self._fd_modes(entry, event)
            if stack:
                self._stack(proc, stack, event)
            out.append(event)
            return out
        if nr == EV_FORK:
            child = self.procs[a0] = Process(a0, proc.cwd)
            child.fds = proc.fds if a1 & CLONE_FILES else {k: Fd(v.path, v.kind, v.flags) for k, v in proc.fds.items()}
            child.maps = dict(proc.maps)
            child.image = proc.image.copy() if proc.image else None
            child.space = proc.space.copy() if proc.space else None
            if self.pycodes:
                self.pycodes.fork(pid, a0)
            out.append({"t": t, "pid": pid, "tid": tid, "syscall": "fork", "child": a0, "flags": a1, "ret": a0})
            return out
        if nr == EV_EXEC:
            proc.fds = {k: v for k, v in proc.fds.items() if not v.flags & O_CLOEXEC}
            proc.maps = {}
            if proc.space is not None:
                proc.space = AddressSpace()      # until the new image's auxiliary vector
                self.pycodes.forget(pid)
            path = os.path.normpath(os.path.join(proc.cwd, decode_path(raw1)))
            proc.image = Image.at_exec(pid, path)
            event = {"t": t, "pid": pid, "tid": tid, "syscall": "exec", "path": path, "ret": 0}
            if a0 != tid:   # a thread other than the main one exec'd: it now has the process's id
                event["old_tid"] = a0
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    event["argv"] = [os.fsdecode(a) for a in f.read().split(b"\0")[:-1]]
            except OSError:
                pass
            out.append(event)
            return out
        if nr == EV_STDIO_LOST:
            fd = s32(a0)
            entry = self._fd(proc, fd, tid, t, out)
            out.append({"t": t, "pid": pid, "tid": tid, "syscall": "stdio_lost", "fd": fd, "path": entry.path,
                        "kind": entry.kind, "bytes": a1, "file_ptr": a2, "ret": 0})
            return out
        if nr == EV_EXIT:
            code, sig = ret & 0xFF, (ret >> 8) & 0xFF
            out.append({"t": t, "pid": pid, "tid": tid, "syscall": "exit",
                        "code": None if sig else code, "signal": sig or None, "ret": 0})
            self.procs.pop(pid, None)
            if self.pycodes:
                self.pycodes.forget(pid)
            return out
        name, handler = self._decoders.get(nr, (str(nr), None))
        if name in ("clone", "clone3", "fork", "vfork"):
            if pending_runtime:
                self._runtime(proc, tid, t, out)
            return out   # the fork event already says it; only their flags were needed
        event = {"t": t, "pid": pid, "tid": tid, "syscall": name, "ret": ret_value(ret)}
        if rec.__class__ is InjectedRecord:
            event["injected"] = True
            event["injection"] = rec.injection
        self._entry_ns = ts_first
        ok = ret >= 0
        if handler is not None:
            handler(proc, event, ok, ret, (a0, a1, a2, a3, a4, a5), decode_path(raw1), decode_path(raw2), out)
        if name in ("fsync", "fdatasync"):
            event["latency_us"] = (ts - ts_first) // 1000
        if stack:
            self._stack(proc, stack, event)
        if pending_runtime and not _loader_like(event):
            self._runtime(proc, tid, t, out)
        out.append(event)
        return out

    # Per-syscall decoding. Signature: (proc, event, ok, ret, args, path, path2, out).

    def _open_common(self, proc, event, ok, ret, dirfd, path, flags, mode, out):
        abspath = self._abs(proc, dirfd, path, event["tid"], event["t"], out)
        event.update(path=abspath, flags=open_flag_names(flags), mode=mode)
        if ok:
            kind = self._open_kind(abspath, flags)
            proc.fds[ret] = Fd(abspath, kind, flags)
            event.update(fd=ret, kind=kind)
            if flags & (O_CREAT | O_TRUNC) and kind == "file":
                self._creation(event, abspath)

    def _creation(self, event: dict, path: str) -> None:
        """Did this open create the file? Its birth time against the call's entry.

        The kernel side cannot stat, and after the call the old size of an
        O_TRUNC'ed file is gone; a file born before the call existed."""
        born = birth_time_ns(path)
        if born is None:
            return
        entry = self._entry_ns + self.realtime_offset_ns
        if born >= entry - COARSE_CLOCK_SLACK_NS:
            event["created"] = True
        else:
            event["existed"] = True

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
            proc.fds[ret] = Fd(entry.path, entry.kind, flags)

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

    def _on_write(self, proc, event, ok, ret, a, path, path2, out):
        entry = self._fd_event(proc, event, s32(a[0]), out)
        if event["syscall"] in ("write", "pwrite64"):
            event["count"] = a[2]
        else:
            event["iovcnt"] = a[2]
        if event["syscall"] == "pwritev2":
            event["rwf"] = flag_names(a[5], RWF_FLAGS)
        self._fd_modes(entry, event)

    _on_pwrite64 = _on_writev = _on_pwritev = _on_pwritev2 = _on_write

    def _on_fsync(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)

    _on_fdatasync = _on_fsync

    def _on_syncfs(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)

    def _on_sync_file_range(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)
        event.update(offset=a[1], nbytes=a[2], flags=flag_names(a[3], SFR_FLAGS))

    def _on_ftruncate(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)
        event["length"] = a[1]

    def _on_truncate(self, proc, event, ok, ret, a, path, path2, out):
        event.update(path=self._abs(proc, AT_FDCWD, path, event["tid"], event["t"], out), length=a[1])

    def _on_fallocate(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)
        event.update(mode=a[1], offset=a[2], length=a[3])

    def _on_mmap(self, proc, event, ok, ret, a, path, path2, out):
        fd = s32(a[4])
        event.update(length=a[1], prot=flag_names(a[2], PROT_FLAGS), flags=flag_names(a[3] & 0x3F, MAP_FLAGS))
        if fd >= 0:
            self._fd_event(proc, event, fd, out)
            if ok:
                proc.maps[ret] = (a[1], event["path"])
                if a[2] & PROT_EXEC and proc.space is not None:    # code, for --stacks
                    proc.space.map(ret, a[1], event["path"], a[5])
                if (a[2] & PROT_EXEC and proc.image is not None and proc.image.library_mapped(event["path"])
                        and proc.image.decided):   # a library's code, dlopen'ed late
                    self._runtime(proc, event["tid"], event["t"], out)
        if ok:
            event["addr"] = ret
            event["ret"] = 0

    def _mapped_path(self, proc, addr):
        for start, (length, path) in proc.maps.items():
            if start <= addr < start + length:
                return path
        return None

    def _on_msync(self, proc, event, ok, ret, a, path, path2, out):
        event.update(addr=a[0], length=a[1], flags=flag_names(a[2], MS_FLAGS))
        mapped = self._mapped_path(proc, a[0])
        if mapped:
            event["path"] = mapped

    def _on_munmap(self, proc, event, ok, ret, a, path, path2, out):
        event.update(addr=a[0], length=a[1])
        mapped = self._mapped_path(proc, a[0])
        if mapped:
            event["path"] = mapped
            if ok:
                proc.maps.pop(a[0], None)
        if ok and proc.space is not None:
            proc.space.unmap(a[0], a[1])

    def _two_paths(self, proc, event, dirfd1, p1, dirfd2, p2, out):
        tid, t = event["tid"], event["t"]
        event.update(path=self._abs(proc, dirfd1, p1, tid, t, out), path2=self._abs(proc, dirfd2, p2, tid, t, out))

    def _on_rename(self, proc, event, ok, ret, a, path, path2, out):
        self._two_paths(proc, event, AT_FDCWD, path, AT_FDCWD, path2, out)
        self._moved(proc, event, ok)

    def _on_renameat(self, proc, event, ok, ret, a, path, path2, out):
        self._two_paths(proc, event, s32(a[0]), path, s32(a[2]), path2, out)
        if event["syscall"] == "renameat2":
            event["flags"] = flag_names(a[4], RENAME_FLAGS)
        self._moved(proc, event, ok)

    _on_renameat2 = _on_renameat

    def _moved(self, proc, event, ok):
        """Open fds follow their file across a rename (in every traced process)."""
        if not ok:
            return
        old, new = event["path"], event["path2"]
        prefix = old + "/"
        for other in self.procs.values():
            for entry in other.fds.values():
                if entry.path == old:
                    entry.path = new
                elif entry.path.startswith(prefix):
                    entry.path = new + entry.path[len(old):]

    def _on_link(self, proc, event, ok, ret, a, path, path2, out):
        self._two_paths(proc, event, AT_FDCWD, path, AT_FDCWD, path2, out)

    def _on_linkat(self, proc, event, ok, ret, a, path, path2, out):
        self._two_paths(proc, event, s32(a[0]), path, s32(a[2]), path2, out)

    def _on_symlink(self, proc, event, ok, ret, a, path, path2, out):
        event.update(target=path, path2=self._abs(proc, AT_FDCWD, path2, event["tid"], event["t"], out))

    def _on_symlinkat(self, proc, event, ok, ret, a, path, path2, out):
        event.update(target=path, path2=self._abs(proc, s32(a[1]), path2, event["tid"], event["t"], out))

    def _on_unlink(self, proc, event, ok, ret, a, path, path2, out):
        event["path"] = self._abs(proc, AT_FDCWD, path, event["tid"], event["t"], out)

    _on_rmdir = _on_mkdir = _on_mknod = _on_unlink

    def _on_unlinkat(self, proc, event, ok, ret, a, path, path2, out):
        event["path"] = self._abs(proc, s32(a[0]), path, event["tid"], event["t"], out)
        if a[2] & AT_REMOVEDIR:
            event["flags"] = ["AT_REMOVEDIR"]

    def _on_mkdirat(self, proc, event, ok, ret, a, path, path2, out):
        event["path"] = self._abs(proc, s32(a[0]), path, event["tid"], event["t"], out)

    _on_mknodat = _on_mkdirat

    def _on_chdir(self, proc, event, ok, ret, a, path, path2, out):
        new = self._abs(proc, AT_FDCWD, path, event["tid"], event["t"], out)
        if ok:
            proc.cwd = new
        event["path"] = new

    def _on_fchdir(self, proc, event, ok, ret, a, path, path2, out):
        entry = self._fd_event(proc, event, s32(a[0]), out)
        if ok:
            proc.cwd = entry.path

    def _new_fd(self, proc, event, ok, ret, kind):
        if ok:
            proc.fds[ret] = Fd(f"{kind}:{ret}", kind)
            event["fd"] = ret

    def _on_socket(self, proc, event, ok, ret, a, path, path2, out):
        self._new_fd(proc, event, ok, ret, "socket")

    _on_accept = _on_accept4 = _on_socket

    def _on_io_uring_setup(self, proc, event, ok, ret, a, path, path2, out):
        self._new_fd(proc, event, ok, ret, "anon")

    def _on_io_submit(self, proc, event, ok, ret, a, path, path2, out):
        event["ctx"] = a[0]

    def _fd_pair(self, proc, event, ok, pair, kind):
        """pipe/socketpair: the probe read the two new fds from user memory."""
        if ok:
            fds = [s32(pair), s32(pair >> 32)]
            for fd in fds:
                proc.fds[fd] = Fd(f"{kind}:{fd}", kind)
            event["fds"] = fds

    def _on_pipe(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_pair(proc, event, ok, a[5], "pipe")

    _on_pipe2 = _on_pipe

    def _on_socketpair(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_pair(proc, event, ok, a[5], "socket")

    def _on_sendto(self, proc, event, ok, ret, a, path, path2, out):
        entry = self._fd(proc, s32(a[0]), event["tid"], event["t"], out)
        event.update(fd=s32(a[0]), kind=entry.kind)

    _on_sendmsg = _on_sendmmsg = _on_sendto

    def _on_sendfile(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)
        event.update(fd_in=s32(a[1]), bytes=max(ret, 0))

    def _on_copy_file_range(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[2]), out)
        event.update(fd_in=s32(a[0]), bytes=max(ret, 0))

    _on_splice = _on_copy_file_range
