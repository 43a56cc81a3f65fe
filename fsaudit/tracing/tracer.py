"""The live tracer: loads probes/fsaudit.c (package data), compiled by bcc once (probecache), and streams resolved events.

About 540 lines, one class on purpose: load, spawn or attach, poll and stop share one
BPF object, one ring reader (emptied by a thread of its own) and one resolver, and the
order of those steps is the fidelity guarantee (docs/guarantees.md). What does not need that state lives beside
it: attach_tree (finding and pinning processes), inject, ringbuf, resolve/."""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import pwd
import select
import shutil
import subprocess
import threading
import time
from typing import Callable

from .attach_tree import (AttachError, Pinned, children, pin_child, read_running, read_stat,
                          tgid_of, unix_socket_names, unseen_warning)
from .bpf import BpfError, Program, libc_path, uprobe_offsets
from .probecache import CompileError, compiled_probe
from .record import ARG_FIELDS, EV_DATA, EV_WRITE_RUN, PY_FRAMES, InjectedRecord, Record, RecordLayout
from .resolve import Fd, Process, Resolver, kind_of_link, socket_families, socket_inode
from .syscalls import O_CLOEXEC, open_flag_names
from .stacks.cpython import PROBES, attach_process, inline_headers, register_images
from .ringbuf import Backlog, KernelOrder, RingReader
from .stacks.native import AddressSpace, Symbolizer

PROBE_SOURCE = PROBES / "fsaudit.c"
DEFAULT_RINGBUF_PAGES = 4096          # 16 MiB: ~150 000 records (96 bytes plus their paths)
# Records analysis has not reached wait in memory up to this much, then in
# a temporary file (ringbuf.Backlog).
DEFAULT_BACKLOG_MIB = 32
# Records analysed between two copies out of the ring: a few milliseconds'
# work, so the ring is emptied long before a burst could fill it.
ANALYSIS_BATCH = 128
# How long the ring's own thread sleeps when the kernel does not wake it (it
# wakes it once per batch of records): what the ring holds is copied out at
# least this often.
RING_WAIT_S = 0.01
# The probe's QUIET counter is moved at most this often: a bpf() call a batch took
# enough of the reader's time to make the 8x8 writers of tests/test_loss.py lose records.
QUIET_INTERVAL_S = 0.01
TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")   # where tracefs may be mounted
LOST, EPOCH, SPAWNER, QUIET = 0, 1, 2, 5   # slots of the probe's `counters` array
TRACED, SPAWNED = 1, 2                # values of the probe's `traced` map
STDIO_PROBES = {"_IO_file_doallocate": "on_file_doallocate", "fclose": "on_fclose"}   # libc symbol -> program


def _run_record(tid: int, run) -> tuple:
    """A write run read out of the kernel's `runs` map, as the probe would have submitted it (flush_run)."""
    record = Record(ts=run.ts_last, ts_first=run.ts_first, pid=run.pid, tid=tid, nr=EV_WRITE_RUN, epoch=run.epoch,
                    ret=run.bytes, arg0=run.fd, arg1=run.calls, arg2=run.bytes, arg3=run.size_max, arg4=run.nr,
                    arg5=0)
    if not hasattr(run, "stack"):
        return record
    return record + tuple(run.stack) + (0,) * (2 * PY_FRAMES)   # a run has no Python stack


def _inheritable_fds() -> list[int]:
    """Our fds that an exec passes on: those without close-on-exec."""
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.get_inheritable(int(name)):
                fds.append(int(name))
        except OSError:      # the listing's own fd, closed by now
            pass
    return fds


def _login_environment(user: pwd.struct_passwd) -> dict[str, str]:
    """What login(1) sets from the account's entry (an empty shell means /bin/sh)."""
    return {"HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name, "SHELL": user.pw_shell or "/bin/sh"}


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def exit_says_group_dead() -> bool:
    """Does sched_process_exit say whether the exiting thread is its process's
    last (its `group_dead` field, in recent kernels)? Without it the probe
    takes the main thread's exit for the process's (docs/events.md)."""
    for root in TRACEFS_ROOTS:
        try:
            with open(f"{root}/events/sched/sched_process_exit/format") as fmt:
                return any(" group_dead;" in line for line in fmt)
        except OSError:
            continue
    return False


def probe_build(ringbuf_pages: int, stacks: bool, capture: bool) -> tuple[bytes, list[str]]:
    """The probe's source as bcc compiles it (headers inlined) and its flags."""
    cflags = [f"-DRINGBUF_PAGES={ringbuf_pages}", "-w"] + (["-DSTACKS"] if stacks else [])
    if capture:
        cflags.append("-DCAPTURE_DATA")
    if exit_says_group_dead():
        cflags.append("-DEXIT_GROUP_DEAD")
    return inline_headers(PROBE_SOURCE.read_text(), str(PROBE_SOURCE)).encode(), cflags


class TracerError(Exception):
    """The host cannot trace (the message says why); exit status 3."""


class Tracer:
    """Owns the BPF program; call spawn() or attach(), then run() until the tree is gone."""

    def __init__(self, on_events: Callable[[list[dict]], None], ringbuf_pages: int = DEFAULT_RINGBUF_PAGES,
                 stacks: bool = False, backlog_mib: int = DEFAULT_BACKLOG_MIB,
                 capture: Callable[[tuple], None] | None = None,
                 window_open: Callable[[], bool] = lambda: True) -> None:
        """capture: `fsaudit crash`'s recorder, given each EV_DATA record (the bytes a
        write wrote, probes/fsaudit.c CAPTURE_DATA) ahead of the events they belong to.
        window_open: whether the analysis has an FS101 window open, asked after a
        batch at most every QUIET_INTERVAL_S; while it may have one, a send run begins with a send that goes out as
        an event of its own (the probe's QUIET counter, window_may_be_open in
        probes/fsaudit.c)."""
        source, cflags = probe_build(ringbuf_pages, stacks, capture is not None)
        try:
            compiled, _ = compiled_probe(source, cflags)
            self.bpf = Program(compiled)
        except CompileError as exc:
            raise TracerError(str(exc)) from None
        except BpfError as exc:
            raise TracerError(f"loading the BPF program failed: {exc}; run `fsaudit doctor`") from None
        self.t0_ns = time.monotonic_ns()
        self.symbolizer = Symbolizer() if stacks else None
        self._layout = RecordLayout(stacks)
        self.resolver = Resolver(self.t0_ns, self.symbolizer)
        self.on_events = on_events
        self._window_open = window_open
        self._quiet = 0                           # the probe's QUIET counter, as last set
        self._quiet_due = 0.0                     # monotonic time it may be set again
        self._capture = capture
        self._backlog = Backlog(backlog_mib << 20)
        self._order = KernelOrder()               # records read but not yet in order
        self._injected: list[tuple] = []         # appended by the injector's thread
        self._injected_lock = threading.Lock()
        self._injector = None
        self._command_pid: int | None = None
        self._command_execd = False
        self._lost_reported = 0
        self._pinned: dict[int, Pinned] = {}      # attach: the processes it adopted, by pidfd, until they exit
        self._exits = select.poll()               # their pidfds, readable once exited
        self._registered: set[str] = set()        # --stacks: executables told to the probe
        self.traced = self.bpf["traced"]
        self._adopted_bits = self.bpf["adopted_bits"]
        self.counters = self.bpf["counters"]
        self._ring = RingReader(self.bpf["events"].map_fd, ringbuf_pages * mmap.PAGESIZE)
        try:
            self._attach_stdio_probes()
            if capture:
                self._attach_capture()
        except TracerError:
            self._ring.close()
            self.bpf.close()
            raise
        # The ring and the backlog are shared by the analysing thread and the ring's own.
        self._ring_lock = threading.Lock()
        self._emptying = True
        self._ring_thread = threading.Thread(target=self._empty_ring, name="fsaudit-ring", daemon=True)
        self._ring_thread.start()

    def _empty_ring(self) -> None:
        """Copy records out of the ring as they come, whatever analysis is doing.

        A busy tree of many threads leaves a single tracer thread at normal
        priority a few percent of the CPU (the kernel shares it per thread):
        the ring filled and records were lost while analysis waited for its
        turn. This thread only copies (the ring to the backlog, microseconds per
        record), so it runs at real-time priority where allowed; analysis
        stays at normal priority, beside the traced program."""
        with contextlib.suppress(OSError):   # not permitted (a container): normal priority
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
        while self._emptying:
            self._ring.wait_records(RING_WAIT_S)
            with self._ring_lock:
                if self._emptying:
                    self._take_ring()

    def _attach_stdio_probes(self) -> None:
        """FS401: uprobes on glibc, where a FILE gets its buffer and where it is closed.
        Both run once per FILE, not per fwrite, so buffered writers stay at full speed."""
        try:
            libc = libc_path()
            offsets = uprobe_offsets(libc, STDIO_PROBES)
            for symbol, function in STDIO_PROBES.items():
                self.bpf.attach_uprobe(libc, offsets[symbol], function)
        except (BpfError, OSError, KeyError) as exc:
            raise TracerError(f"attaching the stdio uprobes to libc failed ({exc}); run `fsaudit doctor`") from None

    def _attach_capture(self) -> None:
        """The probe's capture_exit, a second program on sys_exit, not named to
        be attached with the others: only `fsaudit crash` records data."""
        try:
            self.bpf.attach_raw_tracepoint("sys_exit", "capture_exit")
        except BpfError as exc:
            raise TracerError(f"attaching the data capture failed: {exc}; run `fsaudit doctor`") from None

    def _set_counter(self, slot: int, value: int) -> None:
        self.counters[ctypes.c_int(slot)] = ctypes.c_uint64(value)

    def spawn(self, argv: list[str], user: pwd.struct_passwd | None = None, injections: list | None = None,
              stdio: tuple[int, int, int] | None = None, env: dict | None = None) -> subprocess.Popen:
        """Start argv gated: the kernel marks our fork child and traces it from its exec on.

        The command gets every fd we were given that is not close-on-exec, as
        the kernel passes them on at an exec (fsaudit's own fds are all
        close-on-exec); stdio: our fds to give it as its 0, 1 and 2 instead.
        user: run it as that account, as a login would: its uid, its gid and
        the groups that list it (initgroups), and HOME, USER, LOGNAME and
        SHELL from its entry. env: the command's environment (default: ours).
        With injections, the child arms the seccomp filter before its exec."""
        injector = None
        if injections:
            from .inject import Injector

            injector = self._injector = Injector(injections, self._on_injected, self._past_exec)
        if injector:
            # Answering starts before the fork: the child's own calls between
            # arming and exec (closing fds) already wait for an answer.
            injector.start()
        identity: dict = {}
        if user is not None:
            identity = {"user": user.pw_uid, "group": user.pw_gid,
                        "extra_groups": os.getgrouplist(user.pw_name, user.pw_gid)}
            env = {**(os.environ if env is None else env), **_login_environment(user)}
        stdin, stdout, stderr = stdio or (None, None, None)
        if self.symbolizer:
            # CPython executables get Python frames once registered by build-id;
            # the command itself may be one, or a script run by one.
            register_images(self.bpf, [shutil.which(argv[0]) or argv[0]])
        # The command's fds: Popen moves stdio into place as 0-2; the others are ours, as they are.
        inheritable = _inheritable_fds()
        given = {fd: fd for fd in inheritable}
        if stdio:
            given.update(enumerate(stdio))
        self._set_counter(SPAWNER, os.getpid())
        try:
            # pass_fds rather than close_fds=False, which would have Popen use
            # glibc's posix_spawn: that leaves glibc's internal signals (32, 33)
            # ignored in the command.
            child = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                                     pass_fds=[fd for fd in inheritable if fd > 2],
                                     preexec_fn=injector.arm_in_child if injector else None, **identity)
        finally:
            self._set_counter(SPAWNER, 0)
            if injector:
                injector.child_started()
        self._command_pid = child.pid
        self._adopt(child.pid, os.getcwd(), os.getpid(), only=given)
        return child

    def _past_exec(self, tid: int) -> bool:
        """Only calls of the command count, not those of our fork child before
        its exec (the one process marked SPAWNED; single-threaded, so tid is its pid).
        Once it has exec'd, nothing needs looking up any more."""
        if self._command_execd:
            return True
        state = self.traced.get(ctypes.c_uint32(tid))
        if state is not None and state.value == TRACED and tid == self._command_pid:
            self._command_execd = True
        return state is None or state.value != SPAWNED

    def _on_injected(self, tid: int, nr: int, args: list, raw_paths: tuple, err: int, injection, ts: int) -> None:
        """Called on the injector's thread while the failing thread waits in the kernel.

        That thread's pending write run is taken out of the kernel here, so it
        is delivered before the failure (the failed call never reached the
        probe, so nothing else would end the run). The failure takes the next
        epoch, as a kernel event would: it sorts after everything submitted
        so far, and a write run the thread begins next sorts after it. (Not
        an atomic add: a kernel event on another CPU in these microseconds
        may share the number; only cross-thread order can differ.)"""
        pid = tgid_of(tid) or tid
        records = []
        runs = self.bpf["runs"]
        key = ctypes.c_uint32(tid)
        run = runs.get(key)
        if run is not None and run.calls:
            records.append(_run_record(tid, run))
            runs.__delitem__(key)
        epoch = self.counters[ctypes.c_int(EPOCH)].value + 1
        self._set_counter(EPOCH, epoch)
        record = InjectedRecord(ts=ts, ts_first=ts, pid=pid, tid=tid, nr=nr, epoch=epoch, ret=-err,
                                path=raw_paths[0], path2=raw_paths[1], **dict(zip(ARG_FIELDS, args)))
        record.injection = injection.spec
        records.append(record)
        with self._injected_lock:
            self._injected.extend(records)

    def attach(self, target: Pinned, warn: Callable[[str], None]) -> int:
        """Trace target and every process of its tree from now on; return how many
        processes were adopted (target included). Raises AttachError when target
        exited while the probe loaded (its PID may name another process by now).

        The target is marked first, so whatever it forks from now on is traced by
        the probe; its existing descendants are then taken one by one, each marked
        before its own children are read, until a pass over the adopted processes
        finds none left (a subreaper among them may have been given orphans since
        its last pass). warn: what could not be read of a process. A target in
        the tree of one attached before is traced already: 0."""
        if self.traced.get(ctypes.c_uint32(target.pid)) is not None and target.alive():
            target.close()
            return 0
        if not self._adopt_running(target, None, warn):
            target.close()
            raise AttachError(f"pid {target.pid} exited while fsaudit was loading; nothing was traced"
                              + ("" if read_stat(target.pid) is None else
                                 f" (pid {target.pid} now names another process, which is not traced)"))
        # fsaudit itself is in the tree when attached to its own shell: never trace it.
        adopted, known, itself = [target], {target.pid}, os.getpid()
        while True:
            found = []
            for parent in adopted:
                unseen = children(parent.pid) - known - {itself}
                if not unseen or not parent.alive():   # alive after the read: they were its children
                    continue
                for child in unseen:
                    known.add(child)
                    if self.traced.get(ctypes.c_uint32(child)) is not None:
                        continue      # forked since its parent was marked: the probe has it
                    pinned = pin_child(child, parent.pid)
                    if pinned is None:
                        continue
                    if self._adopt_running(pinned, parent.pid, warn):
                        found.append(pinned)
                    else:
                        pinned.close()
            if not found:
                return len(adopted)
            adopted += found

    def _adopt_running(self, pinned: Pinned, ppid: int | None, warn: Callable[[str], None]) -> bool:
        """Mark one running process traced and seed it like a fork child of the tree
        (an `adopt` event with its parent, its cwd and open fds, its runtime); False,
        and unmarked, if it has exited. ppid: its parent in the tree, None for the target."""
        pid = pinned.pid
        if not pinned.alive():
            return False
        if self.symbolizer:
            # Before it is marked: its first traced call must already find where
            # its Python frames are, or that call's stack has none.
            exe = _exe(pid)
            if exe and exe not in self._registered:
                self._registered.add(exe)
                register_images(self.bpf, [exe])
            attach_process(self.bpf, pid)
        # Its bit first: the probe asks the bitmaps before `traced` (probes/fsaudit.c).
        # Only this thread writes adopted_bits, so the read-modify-write loses no bit.
        word = ctypes.c_uint32(pid // 64)
        self._adopted_bits[word] = ctypes.c_uint64(self._adopted_bits[word].value | 1 << pid % 64)
        key = ctypes.c_uint32(pid)
        self.traced[key] = ctypes.c_uint8(TRACED)
        if not pinned.alive():
            # Gone before it was marked, so the probe will never see it exit: the
            # entry would keep the tree alive, or trace whoever gets the PID next.
            self.traced.pop(key, None)
            return False
        self._pinned[pinned.pidfd] = pinned
        self._exits.register(pinned.pidfd, select.POLLIN)
        # Read once marked: an fd opened meanwhile is seen here or by the probe.
        seen = read_running(pid)
        if ppid is None:
            stat = read_stat(pid)
            ppid = stat.ppid if stat else 0
        t = round((time.monotonic_ns() - self.t0_ns) / 1e9, 6)
        self.on_events([{"t": t, "pid": pid, "tid": pid, "syscall": "adopt", "ppid": ppid, "exe": seen.exe,
                         "argv": pinned.argv, "ret": 0}])
        self._seed(pid, seen.cwd, seen.fds, running=True)
        problem = unseen_warning(pid, seen)
        if problem:
            warn(problem)
        self._announce_runtime(pid)
        return True

    def _announce_runtime(self, pid: int) -> None:
        """An attached process has mapped its libraries long ago: its runtime is known now."""
        t = round((time.monotonic_ns() - self.t0_ns) / 1e9, 6)
        self.on_events(self.resolver.announce_running(pid, t))

    def _adopt(self, pid: int, cwd: str, fd_owner: int, only: dict[int, int]) -> None:
        """Seed the resolver with the cwd and fds of a process fsaudit starts:
        only maps each of its fds to the fd of fd_owner (fsaudit) it is a copy of."""
        fds = {}
        for fd, owner_fd in only.items():
            try:
                target = os.readlink(f"/proc/{fd_owner}/fd/{owner_fd}")
                with open(f"/proc/{fd_owner}/fdinfo/{owner_fd}") as info:
                    flags = next(int(line.split()[1], 8) for line in info if line.startswith("flags:"))
            except (OSError, StopIteration):
                continue
            if owner_fd != fd:   # Popen dup2()ed it into place, which clears close-on-exec
                flags &= ~O_CLOEXEC
            fds[fd] = (target, flags)
        self._seed(pid, cwd, fds, running=False)

    def _seed(self, pid: int, cwd: str, fds: dict[int, tuple[str, int]], running: bool) -> None:
        """Give the resolver a process's cwd and the fds it holds (fd -> link
        target, open flags), and log those fds as `inherit` events (a unix socket's
        with the name it is bound to: a name that is no file). running: it was
        running before tracing began, so its code is mapped already."""
        proc = self.resolver.procs[pid] = Process(pid, cwd)
        if self.symbolizer and running:
            proc.space = AddressSpace.from_proc(pid)
        t = round((time.monotonic_ns() - self.t0_ns) / 1e9, 6)
        events = []
        inodes = {fd: socket_inode(target) for fd, (target, _) in fds.items()}
        families = socket_families(pid, {inode for inode in inodes.values() if inode is not None})
        socket_names = None
        for fd, (target, flags) in sorted(fds.items()):
            entry = proc.fds[fd] = Fd(target, kind_of_link(target), flags, families.get(inodes[fd]))
            event = {"t": t, "pid": pid, "tid": pid, "syscall": "inherit", "fd": fd,
                     "path": entry.path, "kind": entry.kind, "flags": open_flag_names(flags), "ret": 0}
            if entry.family:
                event["family"] = entry.family
            if entry.kind == "socket":
                if socket_names is None:
                    socket_names = unix_socket_names(pid, cwd)
                if target in socket_names:
                    event["bound"] = socket_names[target]
            events.append(event)
        if events:
            self.on_events(events)

    def tree_alive(self) -> bool:
        """Whether any process of the tree is still traced. An adopted process
        that exited just as it was marked (after the probe's exit tracepoint
        ran, before its pidfd said so) left its entry behind: drop it."""
        for pidfd, _ in self._exits.poll(0):
            self._exits.unregister(pidfd)
            pinned = self._pinned.pop(pidfd)
            pinned.close()
            if not self._forked_in_tree(pinned):
                self.traced.pop(ctypes.c_uint32(pinned.pid), None)
        return next(iter(self.traced.keys()), None) is not None   # len() would read every key

    def _forked_in_tree(self, gone: Pinned) -> bool:
        """The PID of an exited adopted process names a new process that a traced one forked."""
        stat = read_stat(gone.pid)
        return (stat is not None and stat.start_time != gone.start_time
                and self.traced.get(ctypes.c_uint32(stat.ppid)) is not None)

    def lost_events(self) -> int:
        return self.counters[ctypes.c_int(LOST)].value

    def poll(self, timeout_ms: int = 50) -> None:
        """Analyse one batch of records: those waiting in the backlog, else
        whatever the ring buffer holds after a wake-up (the probe wakes us per
        batch, not per record) or the timeout."""
        if not self._backlog:
            self._ring.wait(timeout_ms / 1000)
        self._take()
        self._deliver(ANALYSIS_BATCH)

    def _take(self) -> None:
        """Move what the ring holds to the backlog, unless the backlog can take
        no more. Injections are taken first: every kernel event they must
        follow was submitted before they were recorded."""
        with self._injected_lock:
            injected, self._injected = self._injected, []
        with self._ring_lock:
            self._take_ring()
            self._backlog.add_records(injected)

    def _take_ring(self) -> None:
        """With _ring_lock held."""
        taken = self._ring.take() if self._backlog.accepting else None
        if taken is not None:
            self._backlog.add_chunk(*taken)

    def wake_on(self, fd: int) -> None:
        """poll() returns as soon as fd is readable (see RingReader.wake_on)."""
        self._ring.wake_on(fd)

    def catch_up(self) -> None:
        """Analyse what the kernel recorded until now, tracing on (the pytest plugin
        wants a test's findings before the next test starts). The ring keeps being
        emptied meanwhile, but analysis stops at the first record made after the
        call: a tree that keeps busy cannot hold it up for ever."""
        until = time.monotonic_ns()
        self._take()
        while self._backlog and self._deliver(ANALYSIS_BATCH) <= until:
            self._take()
        self._deliver(0)   # reports losses even when nothing arrived

    def _deliver(self, count: int, final: bool = False) -> int:
        """Analyse up to count records; return the kernel time of the latest (0 for none)."""
        lost = self.lost_events()
        # Every event bumps the kernel's epoch; a write run carries the epoch
        # it began in and so belongs right after that event, even when
        # another thread's later event reached the ring buffer first, or an
        # earlier batch (KernelOrder).
        with self._ring_lock:
            records = self._backlog.next(count, self._layout.unpack_all)
        if self._capture:
            # Out of the ordering: no epoch of their own; the recorder pairs them
            # with their calls' events, thread by thread, once tracing ends.
            capture = self._capture
            records = [rec for rec in records if rec[4] != EV_DATA or capture(rec)]
        now = time.monotonic()
        batch = self._order.order(records, now, lost=lost > self._lost_reported, final=final)
        events = self.resolver.resolve_all(batch)
        if lost > self._lost_reported:
            t = round((time.monotonic_ns() - self.t0_ns) / 1e9, 6)
            events.append({"t": t, "pid": 0, "tid": 0, "syscall": "lost", "count": lost - self._lost_reported, "ret": 0})
            self._lost_reported = lost
        if events:
            self.on_events(events)
            if now >= self._quiet_due and self._order.handed_out > self._quiet and not self._window_open():
                self._quiet, self._quiet_due = self._order.handed_out, now + QUIET_INTERVAL_S
                self._set_counter(QUIET, self._quiet)
        return max((rec[0] for rec in batch), default=0)

    def _drain(self, progress: Callable[[], None], final: bool = False) -> None:
        """Analyse everything the ring and the backlog hold, calling progress between
        batches; final: the last records are in, none is waited for any more."""
        self._take()
        while self._backlog:
            self._deliver(ANALYSIS_BATCH)
            self._take()
            progress()
        self._deliver(0, final)   # reports losses even when nothing arrived

    def stop(self, progress: Callable[[], None] = lambda: None) -> None:
        """End observation: stop tracing new calls, deliver everything still in
        the kernel (including write runs no later syscall has ended) and the
        backlog, which can take a while after a storm (progress is called
        between batches), unload. Armed injections stop firing: the command's
        calls run from now on."""
        if self._injector:
            self._injector.active = False
        self.traced.clear()
        # Nothing is traced any more: the probes that take long to detach start now.
        self.bpf.detach()
        self._drain(progress)
        runs = [_run_record(tid.value, run) for tid, run in self.bpf["runs"].items() if run.calls]
        with self._ring_lock:
            self._backlog.add_records(runs)
        self._drain(progress, final=True)
        self.close()

    def close(self) -> None:
        """Unload without delivering what the kernel still holds (stop() delivers it first)."""
        with self._ring_lock:
            self._emptying = False
        self._ring_thread.join()
        self._ring.close()
        self._backlog.close()
        self.bpf.close()
        if self.symbolizer:
            self.symbolizer.close()
        for pinned in self._pinned.values():
            pinned.close()
        self._pinned = {}
