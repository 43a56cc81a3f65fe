"""What `attach` reads of a running process from /proc, and how it pins one.

A PID is only a number: the process behind it can exit and the number go to
an unrelated process while the tracer loads. A Pinned process holds a pidfd
(which says when that very process has exited) and its start time, so the
tracer never takes a reused PID for the process it was asked to trace.
"""

from __future__ import annotations

import os
import select
from dataclasses import dataclass, field

PF_KTHREAD = 0x00200000      # include/linux/sched.h: the task is a kernel thread


class AttachError(Exception):
    """The process cannot be attached to (the message says why); exit status 2."""


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID/stat that attach needs."""
    state: str
    ppid: int
    flags: int
    start_time: int          # clock ticks after boot: with the PID, names one process


def read_stat(pid: int) -> Stat | None:
    """pid's /proc/PID/stat, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold anything, ")" included.
    fields = text[text.rindex(b")") + 2:].split()
    return Stat(state=fields[0].decode(), ppid=int(fields[1]), flags=int(fields[6]), start_time=int(fields[19]))


def tgid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("Tgid:"))
    except (OSError, StopIteration):
        return None


class Pinned:
    """One process, held by a pidfd and its start time; argv as it was when pinned."""

    def __init__(self, pid: int, pidfd: int, start_time: int, argv: list[str]) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.start_time = start_time
        self.argv = argv

    def exited(self) -> bool:
        """The pidfd of a process becomes readable once all its threads have exited
        (a zombie included): from then on the PID may name another process."""
        readable = select.poll()
        readable.register(self.pidfd, select.POLLIN)
        return bool(readable.poll(0))

    def alive(self) -> bool:
        """Still running, and /proc/PID still shows it (not a process that got its PID)."""
        if self.exited():
            return False
        stat = read_stat(self.pid)
        return stat is not None and stat.start_time == self.start_time

    def close(self) -> None:
        os.close(self.pidfd)


def pin(pid: int) -> Pinned:
    """Pin pid for attaching, or say why it cannot be attached to (AttachError)."""
    tgid = tgid_of(pid)
    if tgid is not None and tgid != pid:
        raise AttachError(f"pid {pid} is a thread of process {tgid}: attach to {tgid}")
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise AttachError(f"no process with pid {pid}") from None
    except OSError as exc:
        raise AttachError(f"cannot pin pid {pid}: {exc.strerror}") from None
    # Read after the pidfd exists and checked against it below: what is read
    # while the pidfd still says "running" is the pinned process's own.
    stat = read_stat(pid)
    pinned = Pinned(pid, pidfd, stat.start_time if stat else 0, argv_of(pid))
    problem = None
    if pinned.exited() or stat is None:
        problem = (f"pid {pid} is a zombie: it has exited and its parent has not reaped it"
                   if stat is not None and stat.state == "Z" else f"pid {pid} has exited")
    elif stat.flags & PF_KTHREAD:
        problem = f"pid {pid} is a kernel thread: it makes no system calls fsaudit can trace"
    if problem:
        pinned.close()
        raise AttachError(problem)
    return pinned


def pin_child(pid: int, parent: int) -> Pinned | None:
    """pid, found among parent's children, pinned; None if it has exited (a zombie
    too) or the PID now names a process that is not parent's child."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    stat = read_stat(pid)
    pinned = Pinned(pid, pidfd, stat.start_time if stat else 0, argv_of(pid))
    if stat is None or stat.ppid != parent or pinned.exited():
        pinned.close()
        return None
    return pinned


def children(pid: int) -> set[int]:
    """The processes pid's threads have started and not yet lost (exited and reaped, or reparented)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(child) for child in f.read().split())
        except OSError:
            continue
    return found


def argv_of(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [os.fsdecode(a) for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


@dataclass
class Seen:
    """What /proc shows of a running process for seeding the tracer, and what it would not show."""
    cwd: str = "/"
    exe: str | None = None
    fds: dict[int, tuple[str, int]] = field(default_factory=dict)   # fd -> (link target, open flags)
    unreadable: dict[str, str] = field(default_factory=dict)        # what could not be read -> why


def read_running(pid: int) -> Seen:
    """pid's cwd, executable and open fds (with their flags). An fd closed while
    being read is simply not there; what cannot be read (fsaudit has no ptrace
    access to the process) is named in `unreadable`."""
    seen = Seen()
    base = f"/proc/{pid}"
    try:
        seen.cwd = os.readlink(f"{base}/cwd")
    except FileNotFoundError:
        pass
    except OSError as exc:
        seen.unreadable["working directory"] = exc.strerror
    try:
        seen.exe = os.readlink(f"{base}/exe").removesuffix(" (deleted)")
    except OSError:
        pass      # without ptrace access: argv still names the program
    try:
        names = os.listdir(f"{base}/fd")
    except FileNotFoundError:
        names = []
    except OSError as exc:
        seen.unreadable["open file descriptors"] = exc.strerror
        names = []
    for name in names:
        try:
            target = os.readlink(f"{base}/fd/{name}")
            with open(f"{base}/fdinfo/{name}") as info:
                flags = next(int(line.split()[1], 8) for line in info if line.startswith("flags:"))
        except (FileNotFoundError, StopIteration):
            continue       # closed meanwhile
        except OSError as exc:
            seen.unreadable["open file descriptors"] = exc.strerror
            continue
        seen.fds[int(name)] = (target, flags)
    return seen


def unix_socket_names(pid: int, cwd: str) -> dict[str, str]:
    """The names in the filesystem of the unix sockets of pid's network namespace, by the
    link target of an fd on them ("socket:[INODE]"); from /proc/PID/net/unix, whose Path
    column is the name as bound (abstract names start with @): a relative one is taken
    as relative to cwd, where the process is now (it may have bound it elsewhere)."""
    names = {}
    try:
        with open(f"/proc/{pid}/net/unix", "rb") as table:
            next(table)     # Num RefCount Protocol Flags Type St Inode Path
            for line in table:
                fields = line.rstrip(b"\n").split(maxsplit=7)
                if len(fields) == 8 and not fields[7].startswith(b"@"):
                    names[f"socket:[{int(fields[6])}]"] = os.path.normpath(os.path.join(cwd, os.fsdecode(fields[7])))
    except (OSError, StopIteration, ValueError):
        pass
    return names


def unseen_warning(pid: int, seen: Seen) -> str | None:
    """The warning for what could not be read of pid, or None."""
    if not seen.unreadable:
        return None
    consequences = {"open file descriptors": "writes through files it had open before the attach are not "
                                             "attributed to those files",
                    "working directory": "its relative paths are resolved against /"}
    what = sorted(seen.unreadable)
    reasons = sorted(set(seen.unreadable.values()))
    return (f"pid {pid}: could not read its {' and '.join(what)} ({', '.join(reasons)}): "
            + "; ".join(consequences[w] for w in what))
