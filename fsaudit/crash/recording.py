"""The recording: every call of the workload that changes a file in scope, with
the bytes it wrote and where, and every acknowledgement (stdout, sends), in
kernel order. Fed by the tracer while the workload runs (capture: the probe's
EV_DATA records; observe: the resolved events), turned into Ops at the end."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict, deque
from dataclasses import dataclass, field

CALL_END = (1 << 64) - 1          # the offset of the record that closes a call's data (probes/fsaudit.c)
WRITES = frozenset({"write", "pwrite64", "writev", "pwritev", "pwritev2"})
POSITIONAL = frozenset({"pwrite64", "pwritev", "pwritev2"})
OPENS = frozenset({"open", "openat", "openat2", "creat"})
SENDS = frozenset({"sendto", "sendmsg", "sendmmsg"})
IN_KERNEL_COPIES = frozenset({"sendfile", "copy_file_range", "splice"})
AT_REMOVEDIR = 0x200


class Refusal(Exception):
    """The recording cannot be complete: crash says so in one line and exits 3."""


@dataclass
class Op:
    """One call that changes the scope, or an acknowledgement. kind: write, truncate,
    create, mkdir, unlink, rmdir, rename, link, fsync, sync, ack."""
    index: int
    t: float
    syscall: str
    kind: str
    path: str | None = None
    path2: str | None = None
    offset: int = 0
    data: bytes = b""
    length: int = 0
    synchronous: bool = False    # O_SYNC/O_DSYNC or RWF_(D)SYNC: durable when it returns

    def describe(self) -> dict:
        out = {"syscall": self.syscall, "t": self.t}
        if self.path:
            out["path"] = self.path
        if self.path2:
            out["path2"] = self.path2
        return out


@dataclass
class Recording:
    scope: str                   # the model's root: the one scope, or the scopes' deepest common directory
    initial: str                 # the copy of the scopes taken before the workload, laid out as under scope
    ops: list[Op] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)    # the directories explored (--scope)
    # Files written by write()/writev() at a position fsaudit worked out on a descriptor that
    # could also read: a read() there moves the position unseen (the probe does not report reads).
    unsure: set[str] = field(default_factory=set)

    def mounts(self, state_dir: str) -> list[tuple[str, str]]:
        """Where each scope's part of a state built in state_dir is mounted for the checker."""
        return [(os.path.normpath(os.path.join(state_dir, os.path.relpath(s, self.scope))), s)
                for s in self.scopes or [self.scope]]


class Recorder:
    """Collects what the tracer gives while the workload runs; recording() pairs
    writes with their bytes and returns the ops."""

    def __init__(self, scopes: list[str], root: str, initial: str) -> None:
        self.scopes = [s.rstrip("/") or "/" for s in scopes]
        self.scope = root.rstrip("/") or "/"
        self.initial = initial
        self._data: dict[int, deque] = defaultdict(deque)     # tid -> finished calls' (fd, ret, offset arg, bytes)
        self._open: dict[int, list] = {}                      # tid -> chunks of the call being received
        self._events: list[dict] = []

    # The tracer's hooks.

    def capture(self, rec: tuple) -> None:
        tid, offset, length, arg3 = rec[3], rec[8], rec[9], rec[12]
        if offset == CALL_END:
            chunks = self._open.pop(tid, [])
            data = b"".join(chunk for _, chunk in sorted(chunks))
            self._data[tid].append((rec[7], rec[6], arg3, data))
        else:
            self._open.setdefault(tid, []).append((offset, (rec[13] + rec[14])[:length]))

    def observe(self, events: list[dict]) -> None:
        self._events.extend(events)

    # After the workload.

    def in_scope(self, path: str | None) -> bool:
        return bool(path) and any(path == s or path.startswith(s.rstrip("/") + "/") for s in self.scopes)

    def recording(self) -> Recording:
        ops: list[Op] = []
        positions: dict[tuple[int, int], int] = {}
        readable: set[tuple[int, int]] = set()          # (pid, fd) opened O_RDWR
        unsure: set[str] = set()
        sizes = _initial_sizes(self.initial, self.scope)
        exists = set(sizes) | _initial_dirs(self.initial, self.scope)

        def add(**fields) -> None:
            ops.append(Op(index=len(ops), **fields))

        # The command's stdout: what its fd 1 was when it started (a pipe a shell
        # wrapper writes to in its own $(...) is no acknowledgement).
        stdout = next((e.get("path") for e in self._events if e["syscall"] == "inherit" and e.get("fd") == 1), None)
        for event in self._events:
            name, ret = event["syscall"], event.get("ret", 0)
            pid, path, t = event.get("pid"), event.get("path"), event["t"]
            failed = isinstance(ret, int) and ret < 0 or ret is None
            if name == "lost":
                raise Refusal(f"the kernel lost {event.get('count')} events: the recording is incomplete")
            if name in ("io_uring_setup", "io_setup") and not failed:
                raise Refusal(f"{name}: asynchronous I/O is not recorded")
            if name == "fork":
                for (owner, fd), pos in list(positions.items()):
                    if owner == pid:
                        positions[(event["child"], fd)] = pos
                readable |= {(event["child"], fd) for owner, fd in readable if owner == pid}
                continue
            if name in WRITES:
                data = self._pair(event)
                fd = event.get("fd")
                if failed or not ret:
                    continue
                if self.in_scope(path) and event.get("kind") == "file":
                    if data is None or len(data[3]) != ret:
                        raise Refusal(f"the bytes of a {name} to {path} were not all captured")
                    # pwritev2 at offset -1 writes at the position, as write does.
                    if name in POSITIONAL and not (name == "pwritev2" and data[2] == CALL_END):
                        offset = data[2]
                    elif event.get("o_append"):
                        offset = sizes.get(path, 0)
                    else:
                        offset = positions.get((pid, fd), 0)
                        if (pid, fd) in readable:
                            unsure.add(path)
                    if name not in POSITIONAL or offset != data[2]:
                        positions[(pid, fd)] = offset + ret
                    sizes[path] = max(sizes.get(path, 0), offset + ret)
                    rwf = event.get("rwf") or []
                    add(t=t, syscall=name, kind="write", path=path, offset=offset, data=data[3], length=ret,
                        synchronous=bool(event.get("o_sync")) or "RWF_DSYNC" in rwf or "RWF_SYNC" in rwf)
                elif path == stdout or event.get("kind") == "socket":
                    add(t=t, syscall=name, kind="ack", path=path, data=data[3] if data else b"", length=ret)
                continue
            if failed:
                continue
            if name in SENDS:
                add(t=t, syscall=name, kind="ack", path=path, data=f"[{name} of {ret} bytes]\n".encode(),
                    length=ret)
                continue
            if name == "lseek":
                positions[(pid, event.get("fd"))] = ret
                continue
            if name == "close":
                positions.pop((pid, event.get("fd")), None)
                readable.discard((pid, event.get("fd")))
                continue
            if name == "mmap" and self.in_scope(path) and "MAP_SHARED" in event.get("flags", []) \
                    and "PROT_WRITE" in event.get("prot", []):
                raise Refusal(f"a writable MAP_SHARED mapping of {path}: its writes are not recorded")
            if name in IN_KERNEL_COPIES and self.in_scope(path):
                raise Refusal(f"{name} into {path}: bytes copied in the kernel are not recorded")
            if not (self.in_scope(path) or self.in_scope(event.get("path2")) or name in ("sync", "syncfs")):
                continue
            if name in OPENS:
                positions[(pid, event.get("fd"))] = 0
                flags = event.get("flags", [])
                (readable.add if "O_RDWR" in flags else readable.discard)((pid, event.get("fd")))
                if path not in exists and "O_CREAT" in flags:
                    exists.add(path)
                    sizes[path] = 0
                    add(t=t, syscall=name, kind="create", path=path)
                elif "O_TRUNC" in flags and event.get("kind") == "file" and sizes.get(path):
                    sizes[path] = 0
                    add(t=t, syscall=name, kind="truncate", path=path, length=0)
            elif name in ("ftruncate", "truncate"):
                sizes[path] = event["length"]
                add(t=t, syscall=name, kind="truncate", path=path, length=event["length"])
            elif name in ("mkdir", "mkdirat"):
                exists.add(path)
                add(t=t, syscall=name, kind="mkdir", path=path)
            elif name in ("unlink", "unlinkat", "rmdir"):
                exists.discard(path)
                sizes.pop(path, None)
                removes_dir = name == "rmdir" or "AT_REMOVEDIR" in event.get("flags", [])
                add(t=t, syscall=name, kind="rmdir" if removes_dir else "unlink", path=path)
            elif name in ("rename", "renameat", "renameat2"):
                target = event.get("path2")
                if not (self.in_scope(path) and self.in_scope(target)):
                    raise Refusal(f"{name} of {path} to {target}: a move across the scope's edge is not modelled")
                exists.discard(path)
                exists.add(target)
                if path in sizes:
                    sizes[target] = sizes.pop(path)
                add(t=t, syscall=name, kind="rename", path=path, path2=target)
            elif name in ("link", "linkat"):
                exists.add(event.get("path2"))
                sizes[event.get("path2")] = sizes.get(path, 0)
                add(t=t, syscall=name, kind="link", path=path, path2=event.get("path2"))
            elif name in ("fsync", "fdatasync"):
                add(t=t, syscall=name, kind="fsync", path=path)
            elif name in ("sync", "syncfs"):
                add(t=t, syscall=name, kind="sync")
            elif name in ("symlink", "symlinkat", "mknod", "mknodat", "fallocate"):
                raise Refusal(f"{name} on {path}: not modelled")
        return Recording(self.scope, self.initial, ops, self.scopes, unsure)

    def _pair(self, event: dict):
        """The bytes of this write event: its thread's oldest call not yet paired."""
        queue = self._data.get(event.get("tid"))
        if not queue:
            return None
        data = queue.popleft()
        if data[0] != event.get("fd") or data[1] != event.get("ret"):
            raise Refusal(f"the data of a {event['syscall']} on fd {event.get('fd')} did not match its call")
        return data


def _initial_sizes(initial: str, scope: str) -> dict[str, int]:
    sizes = {}
    for base, _, files in os.walk(initial):
        for name in files:
            copy = os.path.join(base, name)
            sizes[os.path.join(scope, os.path.relpath(copy, initial))] = os.lstat(copy).st_size
    return sizes


def _initial_dirs(initial: str, scope: str) -> set[str]:
    dirs = {scope}
    for base, names, _ in os.walk(initial):
        for name in names:
            dirs.add(os.path.join(scope, os.path.relpath(os.path.join(base, name), initial)))
    return dirs


def tree_hashes(root: str) -> dict[str, str]:
    """Relative path -> sha256 of each regular file, "dir" for each directory, under root."""
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(base, name), root)] = "dir"
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out
