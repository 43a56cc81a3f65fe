"""--inject SYSCALL=ERRNO[@N|@N+][:path=GLOB]: make chosen calls of the traced
tree fail without running, the way a failing disk would.

Mechanism: seccomp user notification (kernel >= 5.5). The command's process
installs, just before exec, a seccomp filter that sends only the named
syscalls to fsaudit; one fsaudit thread answers each: "fail with ERRNO"
(the call never runs, so the data stays dirty exactly as after a real
failure) or "continue" (the call runs normally and the tracer sees it).

Why not strace's `-e inject=`: its `when=` counter is kept per traced
thread, not for the tree, and its output would have to be merged into the
event stream by timestamp. Here the counter is global and exact, and an
injected call is ordered exactly: its thread is stopped in the kernel while
fsaudit records the injection, so nothing of that thread can come between.
The cost is one round trip to fsaudit per call of an injected syscall
(measured in bench/); every other syscall runs at full speed.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .syscalls import AT_FDCWD, SYSCALLS

SYSCALL_NUMBERS = {name: nr for nr, name in SYSCALLS.items()}
# Process-lifecycle calls cannot be failed meaningfully (the tracer follows them).
NOT_INJECTABLE = frozenset({"clone", "clone3", "fork", "vfork"})

# Arguments that are path strings, as in probes/fsaudit.c path_args() (tests/test_inject.py compares them).
PATH_ARGS = {
    "open": (0, None), "creat": (0, None), "truncate": (0, None), "unlink": (0, None),
    "mkdir": (0, None), "rmdir": (0, None), "chdir": (0, None), "mknod": (0, None),
    "openat": (1, None), "openat2": (1, None), "unlinkat": (1, None), "mkdirat": (1, None),
    "mknodat": (1, None), "rename": (0, 1), "link": (0, 1), "symlink": (0, 1),
    "renameat": (1, 3), "renameat2": (1, 3), "linkat": (1, 3), "symlinkat": (0, 2),
}
# Which argument is the directory fd a relative path is resolved against.
DIRFD_ARG = {"openat": 0, "openat2": 0, "unlinkat": 0, "mkdirat": 0, "mknodat": 0,
             "renameat": 0, "renameat2": 0, "linkat": 0}
ADDRESS_SYSCALLS = frozenset({"msync", "munmap"})   # first argument is a mapped address


class InjectionError(ValueError):
    """A malformed --inject value (exit status 2)."""


@dataclass(frozen=True)
class Injection:
    spec: str
    syscall: str
    errno_name: str
    nth: int | None        # None: every call
    onward: bool           # @N+: the Nth call and every one after it
    path_glob: str | None

    @property
    def nr(self) -> int:
        return SYSCALL_NUMBERS[self.syscall]

    def fires_on(self, count: int) -> bool:
        """Should the count-th matching call (1-based) fail?"""
        if self.nth is None:
            return True
        return count >= self.nth if self.onward else count == self.nth

    def describe(self) -> dict:
        return {"spec": self.spec, "syscall": self.syscall, "errno": self.errno_name,
                "nth": self.nth, "onward": self.onward, "path": self.path_glob}


def parse_injection(spec: str) -> Injection:
    text, path_glob = spec, None
    if ":" in text:
        text, option = text.split(":", 1)
        if not option.startswith("path=") or option == "path=":
            raise InjectionError(f"--inject {spec}: the only option is :path=GLOB")
        path_glob = option[len("path="):]
    syscall, sep, rest = text.partition("=")
    if not sep:
        raise InjectionError(f"--inject {spec}: expected SYSCALL=ERRNO[@N|@N+][:path=GLOB]")
    if syscall not in SYSCALL_NUMBERS or syscall in NOT_INJECTABLE:
        raise InjectionError(f"--inject {spec}: unknown or untraced syscall {syscall!r}")
    errno_name, _, when = rest.partition("@")
    if not errno_name.isupper() or not isinstance(getattr(errno, errno_name, None), int):
        raise InjectionError(f"--inject {spec}: unknown errno {errno_name!r}")
    nth, onward = None, False
    if when:
        onward = when.endswith("+")
        digits = when[:-1] if onward else when
        if not digits.isdigit() or int(digits) < 1:
            raise InjectionError(f"--inject {spec}: @N needs a call number >= 1, not {when!r}")
        nth = int(digits)
    return Injection(spec, syscall, errno_name, nth, onward, path_glob)


# Kernel ABI (x86-64): linux/seccomp.h, linux/filter.h, linux/audit.h.
SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER = 317, 1, 8
PR_SET_NO_NEW_PRIVS = 38
AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_RET_ALLOW, SECCOMP_RET_USER_NOTIF = 0x7FFF0000, 0x7FC00000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
NOTIF = struct.Struct("=QIIiIQ6Q")            # struct seccomp_notif (80 bytes)
NOTIF_RESP = struct.Struct("=QqiI")           # struct seccomp_notif_resp (24 bytes)
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_IOCTL_NOTIF_ID_VALID = 0x40082102
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _filter_program(numbers: list[int]) -> bytes:
    """Classic BPF: notify fsaudit for these x86-64 syscalls, allow everything else."""
    insns = [(BPF_LD_W_ABS, 0, 0, 4),                                   # A = arch
             (BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
             (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
             (BPF_LD_W_ABS, 0, 0, 0)]                                   # A = nr
    for i, nr in enumerate(numbers):
        insns.append((BPF_JEQ_K, len(numbers) - i, 0, nr))             # to the notify return
    insns += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (BPF_RET_K, 0, 0, SECCOMP_RET_USER_NOTIF)]
    return b"".join(struct.pack("=HBBI", *insn) for insn in insns)


class Injector:
    """Arms the filter in the command's process and answers its notifications.

    on_injected(tid, nr, args, paths, errno, injection) is called from the
    answering thread while the failing thread is still stopped in the kernel.
    """

    def __init__(self, injections: list[Injection], on_injected: Callable, may_count: Callable[[int], bool]) -> None:
        self.on_injected = on_injected
        self.may_count = may_count            # tid -> is it in the traced tree yet (past exec)?
        self.counts = {inj.spec: 0 for inj in injections}
        self.active = True
        self._program = _filter_program(sorted({inj.nr for inj in injections}))
        self._by_nr: dict[int, list[Injection]] = {}
        for inj in injections:
            self._by_nr.setdefault(inj.nr, []).append(inj)
        self._parent_sock, self._child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._listener: int | None = None

    def arm_in_child(self) -> None:
        """Popen preexec_fn: install the filter and hand its listener fd to fsaudit.

        A listener in flight on the socket keeps the filter answered: the
        command's first notified call simply waits for fsaudit's thread.
        Failing here makes Popen raise SubprocessError in fsaudit."""
        if os.geteuid() != 0 and _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        program = ctypes.create_string_buffer(self._program)
        fprog = struct.pack("=HxxxxxxQ", len(self._program) // 8, ctypes.addressof(program))
        listener = _libc.syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                                 ctypes.c_char_p(fprog))
        if listener < 0:
            raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)")
        socket.send_fds(self._child_sock, [b"L"], [listener])
        os.close(listener)

    def start(self) -> None:
        """In fsaudit, before the command starts: a thread that takes the listener and answers."""
        threading.Thread(target=self._answer_loop, name="fsaudit-inject", daemon=True).start()

    def child_started(self) -> None:
        """The child has its copy of the socket: ours would keep the receiver waiting forever."""
        self._child_sock.close()

    def _answer_loop(self) -> None:
        _, fds, _, _ = socket.recv_fds(self._parent_sock, 1, 1)
        self._parent_sock.close()
        if not fds:
            return      # the child failed before arming; Popen reports why
        self._listener = fds[0]
        notif = ctypes.create_string_buffer(NOTIF.size)
        resp = ctypes.create_string_buffer(NOTIF_RESP.size)
        ioctl = _libc.ioctl
        waiter = select.poll()
        waiter.register(self._listener, select.POLLIN)
        while True:
            # POLLHUP: every process under the filter is gone.
            if any(mask & (select.POLLHUP | select.POLLERR) for _, mask in waiter.poll()):
                os.close(self._listener)
                return
            ctypes.memset(notif, 0, NOTIF.size)
            if ioctl(self._listener, SECCOMP_IOCTL_NOTIF_RECV, notif) != 0:
                if ctypes.get_errno() in (errno.EINTR, errno.ENOENT):
                    continue      # ENOENT: the caller died before we read it
                return
            notif_id, tid, _flags, nr, _arch, _ip, *args = NOTIF.unpack_from(notif)
            error = self._decide(notif_id, tid, nr, args)
            NOTIF_RESP.pack_into(resp, 0, notif_id, 0, -error if error else 0,
                                 0 if error else SECCOMP_USER_NOTIF_FLAG_CONTINUE)
            ioctl(self._listener, SECCOMP_IOCTL_NOTIF_SEND, resp)

    def _decide(self, notif_id: int, tid: int, nr: int, args: list[int]) -> int:
        """The errno to fail this call with, or 0 to let it run."""
        if not self.active or not self.may_count(tid):
            return 0
        paths: tuple | None = None
        for inj in self._by_nr.get(nr, ()):
            if inj.path_glob is not None:
                if paths is None:
                    paths = self._call_paths(notif_id, tid, inj.syscall, args)
                if paths[0] is None or not fnmatch.fnmatchcase(paths[0], inj.path_glob):
                    continue
            self.counts[inj.spec] += 1
            if inj.fires_on(self.counts[inj.spec]):
                if paths is None:
                    paths = self._call_paths(notif_id, tid, inj.syscall, args)
                err = getattr(errno, inj.errno_name)
                if inj.syscall == "openat2":
                    args = _open_how_args(tid, args)
                self.on_injected(tid, nr, args, paths[1], err, inj, time.monotonic_ns())
                return err
        return 0

    def _call_paths(self, notif_id: int, tid: int, syscall: str, args: list[int]) -> tuple:
        """(absolute path the call is about or None, raw path-argument strings for the event)."""
        raw = (b"", b"")
        if syscall in PATH_ARGS:
            first, second = PATH_ARGS[syscall]
            raw = (_read_string(tid, args[first]), _read_string(tid, args[second]) if second is not None else b"")
            # The strings were read from a live process: only trust them if the call is still pending.
            valid = ctypes.c_uint64(notif_id)
            if _libc.ioctl(self._listener, SECCOMP_IOCTL_NOTIF_ID_VALID, ctypes.byref(valid)) != 0:
                return None, raw
            base = ""
            if not raw[0].startswith(b"/"):
                dirfd = ctypes.c_int32(args[DIRFD_ARG[syscall]]).value if syscall in DIRFD_ARG else AT_FDCWD
                base = _readlink(f"/proc/{tid}/cwd" if dirfd == AT_FDCWD else f"/proc/{tid}/fd/{dirfd}") or ""
            return os.path.normpath(os.path.join(base, os.fsdecode(raw[0]))), raw
        if syscall in ADDRESS_SYSCALLS:
            return _mapped_file(tid, args[0]), raw
        return _readlink(f"/proc/{tid}/fd/{ctypes.c_int32(args[0]).value}"), raw


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _read_string(tid: int, address: int) -> bytes:
    try:
        with open(f"/proc/{tid}/mem", "rb", buffering=0) as mem:
            mem.seek(address)
            data = mem.read(4096)
    except (OSError, OverflowError, ValueError):
        return b""
    return data.split(b"\0", 1)[0]


def _open_how_args(tid: int, args: list[int]) -> list[int]:
    """openat2's flags and mode from its struct open_how, where the probe puts them (args 2 and 3)."""
    try:
        with open(f"/proc/{tid}/mem", "rb", buffering=0) as mem:
            mem.seek(args[2])
            flags, mode = struct.unpack("=QQ", mem.read(16))
    except (OSError, OverflowError, ValueError, struct.error):
        return args
    return [args[0], args[1], flags, mode, args[4], args[5]]


def _mapped_file(tid: int, address: int) -> str | None:
    try:
        with open(f"/proc/{tid}/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                start, end = (int(x, 16) for x in fields[0].split("-"))
                if start <= address < end and len(fields) == 6:
                    return fields[5].rstrip("\n")
    except OSError:
        pass
    return None
