"""Resolver: raw kernel records in kernel order, resolved event dicts out.

The process events (write runs, fork, exec, exit, stdio_lost, and with
--stacks the auxiliary vector and Python code objects) are decoded here; every
syscall by its family's `_on_<name>` decoder (files, data, namespace,
channels), looked up once per record in a table built at start.
"""

from __future__ import annotations

import os
import time

from ..record import (
    EV_AUXV, EV_EXEC, EV_EXIT, EV_FORK, EV_PYCODE, EV_STDIO_LOST, EV_WRITE_RUN, FS_ENCODING, FS_ERRORS, PY_FRAMES,
    RECORD_FIELDS, STACK_WORDS, InjectedRecord, Record, decode_path,
)
from ..runtimes import Image
from ..stacks.cpython import PyCodes
from ..stacks.native import AddressSpace, Symbolizer
from ..syscalls import CLONE_FILES, O_CLOEXEC, SYSCALLS, ret_value
from .channels import ChannelDecoders
from .data import DataDecoders
from .fdtable import FD_MODES, Fd, Process, s32
from .files import FileDecoders, Statx
from .namespace import NamespaceDecoders

# What the dynamic loader does after exec, before the program's own code runs
# (read-only opens, maps, closes): a runtime is decided at the first call that is not.
LOADER_SYSCALLS = frozenset({"open", "openat", "openat2", "mmap", "munmap", "close"})
# What a syscall's number says beyond its decoder: a fork (its event is the kernel's
# EV_FORK), a sync (its latency is logged), or neither.
FORKING, SYNCING = 1, 2
ROLES = {"clone": FORKING, "clone3": FORKING, "fork": FORKING, "vfork": FORKING, "fsync": SYNCING, "fdatasync": SYNCING}
SEND_NRS = frozenset(nr for nr, name in SYSCALLS.items() if name == "sendto")   # a run of sends carries one of these
SYNC_NRS = {nr: name for nr, name in SYSCALLS.items() if ROLES.get(name) == SYNCING}   # fsync, fdatasync
# The calls whose event is their fd's fields alone (a sync's latency after them): resolve_all
# makes those of a known fd itself, as their decoders (_on_fsync, _on_close) would.
FD_ONLY_NRS = {**SYNC_NRS, **{nr: name for nr, name in SYSCALLS.items() if name == "close"}}
# Below 2**50 ns (13 days) a float of nanoseconds is exact to far under a nanosecond, so
# (ns + 500) // 1000 / 1e6 is round(ns / 1e9, 6), except at an exact tie (ns % 1000 == 500),
# which round() decides by the float's side of it; and a negative time that rounds to
# -0.0 (round's) is 0.0 in integers. _seconds leaves those to round().
EXACT_NS = 1 << 50


def _seconds(since_ns: int) -> float:
    """round(since_ns / 1e9, 6), the log's time of an event, at a third of its cost."""
    if 0 <= since_ns < EXACT_NS and since_ns % 1000 != 500:
        return (since_ns + 500) // 1000 / 1e6
    return round(since_ns / 1e9, 6)


def _loader_like(event: dict) -> bool:
    name = event["syscall"]
    if name not in LOADER_SYSCALLS:
        return False
    flags = event.get("flags", ())
    return not name.startswith("open") or (flags[:1] == ["O_RDONLY"] and "O_CREAT" not in flags)


def _exec_argv(pid: int, argc: int, copied: bytes, total: int) -> list[str] | None:
    """An exec's argv from the bytes the probe copied off the new image's stack at its
    first return (its strings, NUL-terminated, one after the other). When they were too
    long to copy whole, /proc/PID/cmdline gives the rest if it still starts with them
    (it is read later, when the process may have exited, exec'd again or rewritten
    its title); else the argv is what was copied, its last string cut short."""
    if not argc or not copied:
        return None
    if len(copied) < total:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            cmdline = b""
        if cmdline.startswith(copied):
            copied = cmdline
    strings = copied.split(b"\0")
    if copied.endswith(b"\0"):
        strings.pop()
    return [os.fsdecode(arg) for arg in strings[:argc]]


class Resolver(FileDecoders, DataDecoders, NamespaceDecoders, ChannelDecoders):
    """Stateful: feed raw records in kernel order, get resolved event dicts back."""

    def __init__(self, t0_ns: int, symbolizer: Symbolizer | None = None) -> None:
        self.t0_ns = t0_ns
        self.symbolizer = symbolizer
        self.pycodes = PyCodes() if symbolizer else None
        self.realtime_offset_ns = time.time_ns() - time.monotonic_ns()
        self._entry_ns = 0   # entry time of the syscall being resolved
        # nr -> (name, decoder or None, ROLES'), built once: the per-event path does one lookup.
        self._decoders = {nr: (name, getattr(self, "_on_" + name, None), ROLES.get(name, 0))
                          for nr, name in SYSCALLS.items()}
        self.procs: dict[int, Process] = {}
        self.statx = Statx()

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

    def resolve(self, rec: tuple) -> list[dict]:
        """One raw record -> zero or more resolved events (inherit events first)."""
        return self.resolve_all([rec])

    def resolve_all(self, records: list) -> list[dict]:
        """Records in kernel order -> their resolved events, in one list (resolve's, joined).

        The records of a known process whose runtime is decided, with no stack, not
        injected, are resolved in this loop: write runs, fsync/fdatasync and close on a
        known fd (a database's records: 99.9% of pgbench's) without a call, every other
        syscall but a fork by its decoder. The rest, and those that would cause an
        event of their own (an inherited fd's), go through _resolve_into, whose
        per-record work was half the resolver's time on the tmpfs row's records."""
        out: list[dict] = []
        append = out.append
        slow = self._resolve_into
        procs, t0, decoders = self.procs, self.t0_ns, self._decoders
        for rec in records:
            if rec.__class__ is not tuple or len(rec) != RECORD_FIELDS:   # a Record, injected, with a stack
                slow(rec, out)
                continue
            ts, ts_first, pid, tid, nr, _epoch, ret, a0, a1, a2, a3, a4, a5, raw1, raw2 = rec
            proc = procs.get(pid)
            if proc is None or (proc.image is not None and not proc.image.decided):
                slow(rec, out)
                continue
            since = ts - t0
            # _seconds(since), inline.
            t = (since + 500) // 1000 / 1e6 if 0 <= since < EXACT_NS and since % 1000 != 500 else round(since / 1e9, 6)
            if nr == EV_WRITE_RUN or nr in FD_ONLY_NRS:
                fd = a0 if a0 < 0x80000000 else s32(a0)
                entry = proc.fds.get(fd)
                if entry is None:
                    slow(rec, out)
                    continue
                if nr == EV_WRITE_RUN:
                    append(self._run_event(t, pid, tid, fd, entry, a1, a2, a3, a4, ts_first))
                    continue
                event = {"t": t, "pid": pid, "tid": tid, "syscall": FD_ONLY_NRS[nr],
                         "ret": ret if ret >= 0 else ret_value(ret), "fd": fd, "path": entry.path, "kind": entry.kind}
                if entry.family is not None:
                    event["family"] = entry.family
                if nr in SYNC_NRS:
                    event["latency_us"] = (ts - ts_first) // 1000
                else:   # a close frees the fd even when it fails
                    del proc.fds[fd]
                append(event)
                continue
            decoder = decoders.get(nr)   # None: another process event, or a number the probe does not report
            if decoder is None or decoder[2] == FORKING:
                slow(rec, out)
                continue
            name, handler, _role = decoder
            event = {"t": t, "pid": pid, "tid": tid, "syscall": name, "ret": ret if ret >= 0 else ret_value(ret)}
            if handler is not None:
                self._entry_ns = ts_first
                # decode_path, inline.
                handler(proc, event, ret >= 0, ret, (a0, a1, a2, a3, a4, a5),
                        raw1.partition(b"\0")[0].decode(FS_ENCODING, FS_ERRORS) if raw1 and raw1[0] else "",
                        raw2.partition(b"\0")[0].decode(FS_ENCODING, FS_ERRORS) if raw2 and raw2[0] else "", out)
            append(event)
        return out

    def _run_event(self, t: float, pid: int, tid: int, fd: int, entry: Fd, calls: int, nbytes: int, size_max: int,
                   nr: int, ts_first: int) -> dict:
        """A write run's event: a sendto event's fields and the run's for a run of
        sends (the probe's send_folds), else a write event's."""
        if nr in SEND_NRS:
            event = {"t": t, "pid": pid, "tid": tid, "syscall": "sendto", "ret": nbytes, "fd": fd,
                     "kind": entry.kind, "calls": calls, "bytes": nbytes, "size_max": size_max,
                     "t_first": _seconds(ts_first - self.t0_ns)}
        else:
            event = {"t": t, "pid": pid, "tid": tid, "syscall": "write", "fd": fd,
                     "path": entry.path, "kind": entry.kind, "calls": calls, "bytes": nbytes,
                     "size_max": size_max, "t_first": _seconds(ts_first - self.t0_ns), "ret": nbytes}
            if entry.flags & FD_MODES:
                self._fd_modes(entry, event)
        if entry.family is not None:
            event["family"] = entry.family
        return event

    def _resolve_into(self, rec: tuple, out: list[dict]) -> None:
        """Append the events of one raw record to out (inherit events first)."""
        stack = None
        if len(rec) > RECORD_FIELDS:
            stack, rec = rec[RECORD_FIELDS:], rec[:RECORD_FIELDS]
        # Record's fields, in its order: unpacking names them at the least cost (tests/test_ringbuf.py).
        ts, ts_first, pid, tid, nr, _epoch, ret, a0, a1, a2, a3, a4, a5, raw1, raw2 = rec
        since = ts - self.t0_ns
        # _seconds(since), inline: once per record.
        t = (since + 500) // 1000 / 1e6 if 0 <= since < EXACT_NS and since % 1000 != 500 else round(since / 1e9, 6)
        proc = self.procs.get(pid) or self.process(pid)
        if nr < 0:      # a process event (EV_*), not a syscall
            self._process_event(proc, rec, stack, ts_first, pid, tid, nr, ret, a0, a1, a2, a3, a4, raw1, raw2, t, out)
            return
        decoder = self._decoders.get(nr)
        name, handler, role = decoder if decoder is not None else (str(nr), None, 0)
        pending_runtime = proc.image is not None and not proc.image.decided
        if role == FORKING:
            if pending_runtime:
                self._runtime(proc, tid, t, out)
            return   # the fork event already says it; only their flags were needed
        event = {"t": t, "pid": pid, "tid": tid, "syscall": name, "ret": ret if ret >= 0 else ret_value(ret)}
        if rec.__class__ is InjectedRecord:
            event["injected"] = True
            event["injection"] = rec.injection
        self._entry_ns = ts_first
        if handler is not None:
            # decode_path's own test for no path, inline: most records carry none.
            handler(proc, event, ret >= 0, ret, (a0, a1, a2, a3, a4, a5), decode_path(raw1) if raw1 and raw1[0] else "",
                    decode_path(raw2) if raw2 and raw2[0] else "", out)
        if role == SYNCING:
            event["latency_us"] = (ts - ts_first) // 1000
        if stack:
            self._stack(proc, stack, event)
        if pending_runtime and not _loader_like(event):
            self._runtime(proc, tid, t, out)
        out.append(event)

    def _process_event(self, proc, rec, stack, ts_first, pid, tid, nr, ret, a0, a1, a2, a3, a4, raw1, raw2, t, out):
        """Write runs, fork, exec, exit, stdio_lost, and with --stacks the auxiliary vector and code objects."""
        if nr == EV_AUXV:
            self._auxv(proc, a0, a1)
            return
        if nr == EV_PYCODE:
            self.pycodes.add(pid, Record._make(rec))
            return
        pending_runtime = proc.image is not None and not proc.image.decided
        if pending_runtime and nr in (EV_WRITE_RUN, EV_FORK, EV_STDIO_LOST, EV_EXIT):
            self._runtime(proc, tid, t, out)    # none of these is the dynamic loader's doing
        if nr == EV_WRITE_RUN:
            fd = s32(a0)
            event = self._run_event(t, pid, tid, fd, self._fd(proc, fd, tid, t, out), a1, a2, a3, a4, ts_first)
            if stack:
                self._stack(proc, stack, event)
            out.append(event)
            return
        if nr == EV_FORK:
            child = self.procs[a0] = Process(a0, proc.cwd)
            child.fds = proc.fds if a1 & CLONE_FILES else {
                k: Fd(v.path, v.kind, v.flags, v.family) for k, v in proc.fds.items()}
            child.maps = dict(proc.maps)
            child.image = proc.image.copy() if proc.image else None
            child.space = proc.space.copy() if proc.space else None
            if self.pycodes:
                self.pycodes.fork(pid, a0)
            out.append({"t": t, "pid": pid, "tid": tid, "syscall": "fork", "child": a0, "flags": a1, "ret": a0})
            return
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
            argv = _exec_argv(pid, a1, raw2[:a2], a3)
            if argv is not None:
                event["argv"] = argv
            out.append(event)
            return
        if nr == EV_STDIO_LOST:
            fd = s32(a0)
            entry = self._fd(proc, fd, tid, t, out)
            out.append({"t": t, "pid": pid, "tid": tid, "syscall": "stdio_lost", "fd": fd, "path": entry.path,
                        "kind": entry.kind, "bytes": a1, "file_ptr": a2, "ret": 0})
            return
        if nr == EV_EXIT:
            code, sig = ret & 0xFF, (ret >> 8) & 0xFF
            out.append({"t": t, "pid": pid, "tid": tid, "syscall": "exit",
                        "code": None if sig else code, "signal": sig or None, "ret": 0})
            self.procs.pop(pid, None)
            if self.pycodes:
                self.pycodes.forget(pid)
            return

