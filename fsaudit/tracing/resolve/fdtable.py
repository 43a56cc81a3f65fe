"""What resolving keeps per process: its fd table, cwd, mappings and image.

ProcessTable is the base of Resolver and of each decoder family: the process
table and the lookups every decoder shares. Fds never seen opened (inherited
before tracing began) are read once from /proc and announced with an
`inherit` event, so that the log replays without /proc.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from ..runtimes import Image
from ..stacks.native import AddressSpace, Symbolizer
from ..syscalls import AT_FDCWD, O_APPEND, O_DIRECT, O_DSYNC

FD_MODES = O_DSYNC | O_DIRECT | O_APPEND   # the open flags _fd_modes names: none, no call


@dataclass(slots=True)
class Fd:
    path: str
    kind: str            # file, dir, socket, pipe, tty, anon, unknown
    flags: int = 0
    family: str | None = None   # sockets: AF_INET, AF_UNIX, AF_NETLINK, ... (None: not known)


@dataclass
class Process:
    pid: int
    cwd: str
    fds: dict[int, Fd] = field(default_factory=dict)
    maps: dict[int, tuple[int, str]] = field(default_factory=dict)   # addr -> (length, path)
    image: Image | None = None      # the program exec'd under tracing, for its runtime
    space: AddressSpace | None = None   # --stacks: its executable mappings


def kind_of_link(target: str) -> str:
    if target.startswith("socket:"):
        return "socket"
    if target.startswith("pipe:"):
        return "pipe"
    if target.startswith("anon_inode:") or target.startswith("/memfd:"):
        return "anon"
    if target.startswith("/dev/pts/") or target.startswith("/dev/tty"):
        return "tty"
    if target.startswith("/"):
        try:
            mode = os.stat(target).st_mode
        except OSError:
            return "file"
        return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"
    return "unknown"


# The tables of /proc/PID/net that list a family's sockets (of the process's network
# namespace), and the column of each row that holds the socket's inode. AF_VSOCK has
# none: an inherited vsock socket's family stays unknown.
SOCKET_TABLES = (("unix", 6, "AF_UNIX"), ("tcp", 9, "AF_INET"), ("udp", 9, "AF_INET"), ("tcp6", 9, "AF_INET6"),
                 ("udp6", 9, "AF_INET6"), ("netlink", 9, "AF_NETLINK"), ("packet", 8, "AF_PACKET"),
                 ("raw", 9, "AF_INET"), ("raw6", 9, "AF_INET6"), ("udplite", 9, "AF_INET"),
                 ("udplite6", 9, "AF_INET6"), ("icmp", 9, "AF_INET"), ("icmp6", 9, "AF_INET6"))


def socket_inode(target: str) -> int | None:
    """The inode of a socket fd's link target, "socket:[12345]"."""
    try:
        return int(target[len("socket:["):-1]) if target.startswith("socket:[") else None
    except ValueError:
        return None


def socket_families(pid: int, inodes: set[int]) -> dict[int, str]:
    """The family of each socket inode pid holds, from the tables of its network
    namespace (the kernel side cannot read a socket's family without a kernel struct,
    and a socket made before tracing began was never seen created). Stops reading
    tables once every inode is found; an inode in none stays out of the result."""
    families: dict[int, str] = {}
    wanted = set(inodes)
    for table, column, family in SOCKET_TABLES:
        if not wanted:
            break
        try:
            with open(f"/proc/{pid}/net/{table}", "rb") as rows:
                next(rows, None)    # the header
                for row in rows:
                    fields = row.split()
                    if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
                        inode = int(fields[column])
                        families[inode] = family
                        wanted.discard(inode)
        except OSError:
            continue
    return families


def s32(value: int) -> int:
    """An int argument (an fd, a dirfd) from the u64 the probe ships it in."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


class ProcessTable:
    """Every traced process by pid; Resolver sets both attributes."""

    procs: dict[int, Process]
    symbolizer: Symbolizer | None

    def process(self, pid: int) -> Process:
        proc = self.procs.get(pid)
        if proc is None:
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                cwd = "/"
            proc = self.procs[pid] = Process(pid, cwd)
            if self.symbolizer:
                proc.space = AddressSpace.from_proc(pid)
        return proc

    def _runtime(self, proc: Process, tid: int, t: float, out: list[dict]) -> None:
        """A `runtime` event when the process image's runtime is first known (at its
        first call past the dynamic loader) or changes (a signature library dlopen'ed)."""
        runtime = proc.image.decide()
        if runtime is not None:
            out.append({"t": t, "pid": proc.pid, "tid": tid, "syscall": "runtime", **runtime.fields(), "ret": 0})

    def _fd(self, proc: Process, fd: int, tid: int, t: float, out: list[dict]) -> Fd:
        """The fd's entry, reading it once from /proc when it predates tracing."""
        entry = proc.fds.get(fd)
        if entry is None:
            try:
                target = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                kind = kind_of_link(target)
            except OSError:
                target, kind = f"fd:{fd}", "unknown"
            entry = proc.fds[fd] = Fd(target, kind)
            event = {"t": t, "pid": proc.pid, "tid": tid, "syscall": "inherit", "fd": fd,
                     "path": target, "kind": kind, "ret": 0}
            inode = socket_inode(target)
            if inode is not None:
                entry.family = socket_families(proc.pid, {inode}).get(inode)
                if entry.family:
                    event["family"] = entry.family
            out.append(event)
        return entry

    def _abs(self, proc: Process, dirfd: int, path: str, tid: int, t: float, out: list[dict]) -> str:
        # Characters by index, not slices nor startswith: a third of their cost.
        if not path or path[0] != "/":
            base = proc.cwd if dirfd == AT_FDCWD else self._fd(proc, dirfd, tid, t, out).path
            # os.path.join(base, path) for a relative path, less its generic steps.
            path = base + path if not base or base[-1] == "/" else base + "/" + path
        # os.path.normpath(path), at half its cost when path is already normal: absolute, with
        # no empty, "." or ".." component and no slash at its end ("/." is stricter than that:
        # a name starting with "." goes to normpath too).
        if not path or path[0] != "/" or path[-1] == "/" or "//" in path or "/." in path:
            return os.path.normpath(path)
        return path

    def _fd_event(self, proc, event, fd, out) -> Fd:
        entry = proc.fds.get(fd) or self._fd(proc, fd, event["tid"], event["t"], out)
        event["fd"], event["path"], event["kind"] = fd, entry.path, entry.kind
        if entry.family is not None:
            event["family"] = entry.family
        return entry

    @staticmethod
    def _fd_modes(entry: Fd, event: dict) -> None:
        if entry.flags & O_DSYNC:   # O_SYNC includes it
            event["o_sync"] = True
        if entry.flags & O_DIRECT:
            event["o_direct"] = True
        if entry.flags & O_APPEND:   # every write at the end of the file: a log's pattern (roles)
            event["o_append"] = True
