"""What a power cut may lose: the recording's calls as units, the barriers that
make units durable, and the two persistence models (docs/crash.md).

A unit is a data range (split at 4 KiB sectors, so a write can tear), a size
change, or a directory entry change. A crash state at a point is the set of
units issued by then that are kept; it always keeps what a completed barrier
covers, and each model adds what else a kept unit forces."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from .recording import Op, Recording

SECTOR = 4096
MODELS = ("posix", "ext4-ordered")


@dataclass(frozen=True)
class Unit:
    id: int
    op: int            # index of the call it comes from
    kind: str          # data, size, entry
    inode: int         # data, size: the file; entry: the inode the entry names
    offset: int = 0    # data: where; size: the new size
    data: bytes = b""
    dir: int = -1      # entry: the directory's inode
    name: str = ""     # entry: the name added (or removed, with remove)
    remove: str = ""   # entry: a name removed in the same directory by the same unit (rename)
    adds: bool = True  # entry: whether it adds `name` (False: it removes it)


@dataclass
class Timeline:
    """The units of a recording and what each barrier covers, by call."""
    recording: Recording
    units: list[Unit] = field(default_factory=list)
    by_op: dict[int, list[int]] = field(default_factory=dict)
    covered_at: dict[int, set[int]] = field(default_factory=dict)  # barrier op -> units it makes durable
    root: int = 0
    initial_inodes: dict[int, str] = field(default_factory=dict)  # inode -> its file in the initial copy
    initial_entries: dict[tuple[int, str], int] = field(default_factory=dict)
    dirs: set[int] = field(default_factory=set)

    def issued(self, point: int) -> range:
        """Units are numbered in the order of their calls: those of calls up to point."""
        ops = len(self.recording.ops)
        later = next((self.by_op[op][0] for op in range(point + 1, ops) if op in self.by_op), len(self.units))
        return range(later)

    def required(self, point: int, model: str) -> set[int]:
        out: set[int] = set()
        for op, covered in self.covered_at.items():
            if op <= point:
                out |= covered
        return close_kept(self, out, self.issued(point), model)


def build(recording: Recording) -> Timeline:
    """The units and barriers of a recording."""
    tl = Timeline(recording)
    names: dict[str, int] = {}          # path -> inode, as the workload goes
    next_inode = [0]

    def new_inode() -> int:
        next_inode[0] += 1
        return next_inode[0]

    scope, initial = recording.scope, recording.initial
    tl.root = names[scope] = new_inode()
    tl.dirs.add(tl.root)
    for base, dirs, files in os.walk(initial):
        for name in sorted(dirs) + sorted(files):
            copy = os.path.join(base, name)
            path = os.path.join(scope, os.path.relpath(copy, initial))
            inode = names[path] = new_inode()
            if name in dirs:
                tl.dirs.add(inode)
            else:
                tl.initial_inodes[inode] = copy
            tl.initial_entries[(names[os.path.dirname(path)], name)] = inode
    pending: dict[int, list[int]] = {}   # inode -> its data and size units so far
    entries_in: dict[int, list[int]] = {}  # directory inode -> its entry units so far

    def unit(op: Op, **fields) -> int:
        u = Unit(id=len(tl.units), op=op.index, **fields)
        tl.units.append(u)
        tl.by_op.setdefault(op.index, []).append(u.id)
        if u.kind == "entry":
            entries_in.setdefault(u.dir, []).append(u.id)
        else:
            pending.setdefault(u.inode, []).append(u.id)
        return u.id

    def parent(path: str) -> tuple[int, str]:
        return names.get(os.path.dirname(path), -1), os.path.basename(path)

    for op in recording.ops:
        if op.kind in ("create", "mkdir"):
            inode = names[op.path] = new_inode()
            if op.kind == "mkdir":
                tl.dirs.add(inode)
            d, name = parent(op.path)
            unit(op, kind="entry", inode=inode, dir=d, name=name)
        elif op.kind == "write":
            inode = names.get(op.path)
            if inode is None:
                continue
            made = []
            start = op.offset
            while start < op.offset + op.length:
                end = min((start // SECTOR + 1) * SECTOR, op.offset + op.length)
                made.append(unit(op, kind="data", inode=inode, offset=start,
                                 data=op.data[start - op.offset:end - op.offset]))
                start = end
            if op.synchronous:
                tl.covered_at[op.index] = set(made)
        elif op.kind == "truncate":
            if op.path in names:
                unit(op, kind="size", inode=names[op.path], offset=op.length)
        elif op.kind in ("unlink", "rmdir"):
            inode = names.pop(op.path, None)
            if inode is not None:
                d, name = parent(op.path)
                unit(op, kind="entry", inode=inode, dir=d, name=name, adds=False)
        elif op.kind == "rename":
            inode = names.pop(op.path, None)
            if inode is None:
                continue
            for path in [p for p in names if p.startswith(op.path + "/")]:   # a directory's contents move with it
                names[op.path2 + path[len(op.path):]] = names.pop(path)
            (d1, n1), (d2, n2) = parent(op.path), parent(op.path2)
            names[op.path2] = inode
            if d1 == d2:     # one atomic unit in its directory
                unit(op, kind="entry", inode=inode, dir=d2, name=n2, remove=n1)
            else:
                unit(op, kind="entry", inode=inode, dir=d1, name=n1, adds=False)
                unit(op, kind="entry", inode=inode, dir=d2, name=n2)
        elif op.kind == "link":
            inode = names.get(op.path)
            if inode is not None:
                names[op.path2] = inode
                d, name = parent(op.path2)
                unit(op, kind="entry", inode=inode, dir=d, name=name)
        elif op.kind == "fsync":
            inode = names.get(op.path)
            if inode is None:
                continue
            covered = entries_in.get(inode, []) if inode in tl.dirs else pending.get(inode, [])
            tl.covered_at[op.index] = set(covered)
        elif op.kind == "sync":
            tl.covered_at[op.index] = set(range(len(tl.units)))
    return tl


def _renamed_data(tl: Timeline, u: Unit) -> list[int]:
    """ext4-ordered: the data and size units a rename (its adding unit) brings with it."""
    if u.kind != "entry" or not u.adds or tl.recording.ops[u.op].kind != "rename":
        return []
    return [v.id for v in tl.units[:u.id] if v.kind in ("data", "size") and v.inode == u.inode]


def close_kept(tl: Timeline, required: set[int], issued, model: str) -> set[int]:
    """required with everything its units force. ext4-ordered: ext4's journal
    commits directory operations in order (a kept entry keeps every earlier
    one), and with data=ordered and auto_da_alloc a rename commits with the
    data written to the renamed file before it."""
    out = set(required)
    if model != "ext4-ordered" or not out:
        return out
    last = max((u for u in out if tl.units[u].kind == "entry"), default=-1)
    for u in issued:
        if u > last:
            break
        if tl.units[u].kind == "entry":
            out.add(u)
    for u in [u for u in out if tl.units[u].kind == "entry"]:
        out.update(_renamed_data(tl, tl.units[u]))
    return out


def drop(tl: Timeline, point: int, model: str, lost: set[int], required: set[int] | None = None) -> frozenset[int]:
    """The units actually lost at point when `lost` are: never a required one, and
    under ext4-ordered every unit that would force a lost one is lost too (the
    required set is closed, so none of those is required)."""
    required = tl.required(point, model) if required is None else required
    dropped = set(lost) - required
    if model != "ext4-ordered" or not dropped:
        return frozenset(dropped)
    issued = tl.issued(point)
    while True:
        first = min((u for u in dropped if tl.units[u].kind == "entry"), default=None)
        more = set()
        if first is not None:
            more = {u for u in issued if u > first and tl.units[u].kind == "entry"} - dropped
        data_lost = {tl.units[u].inode: u for u in sorted(dropped, reverse=True) if tl.units[u].kind != "entry"}
        more |= {u for u in issued if u not in dropped and tl.units[u].kind == "entry"
                 and tl.units[u].inode in data_lost and data_lost[tl.units[u].inode] < u
                 and _renamed_data(tl, tl.units[u])}
        if not more:
            return frozenset(dropped)
        dropped |= more


@dataclass
class State:
    """The files a crash state holds: path -> bytes (files) or None (directories)."""
    files: dict[str, bytes | None]

    def digest(self) -> str:
        h = hashlib.sha256()
        for path in sorted(self.files):
            content = self.files[path]
            h.update(path.encode("utf-8", "surrogateescape") + b"\0")
            h.update(b"D" if content is None else b"F" + hashlib.sha256(content).digest())
        return h.hexdigest()


def state_at(tl: Timeline, point: int, dropped: frozenset[int] | set[int]) -> State:
    """The state after every unit issued by point except the dropped ones, applied in order."""
    entries = dict(tl.initial_entries)
    contents: dict[int, bytearray] = {}

    def content(inode: int) -> bytearray:
        if inode not in contents:
            source = tl.initial_inodes.get(inode)
            contents[inode] = bytearray(open(source, "rb").read()) if source else bytearray()
        return contents[inode]

    for uid in tl.issued(point):
        if uid in dropped:
            continue
        u = tl.units[uid]
        if u.kind == "data":
            c = content(u.inode)
            if len(c) < u.offset:
                c.extend(bytes(u.offset - len(c)))
            c[u.offset:u.offset + len(u.data)] = u.data
        elif u.kind == "size":
            c = content(u.inode)
            del c[u.offset:]
            c.extend(bytes(u.offset - len(c)))
        elif u.adds:
            if u.remove and entries.get((u.dir, u.remove)) == u.inode:
                del entries[(u.dir, u.remove)]
            entries[(u.dir, u.name)] = u.inode
        elif entries.get((u.dir, u.name)) == u.inode:
            del entries[(u.dir, u.name)]
    children: dict[int, list[tuple[str, int]]] = {}
    for (d, name), inode in entries.items():
        children.setdefault(d, []).append((name, inode))
    files: dict[str, bytes | None] = {}
    stack, seen = [("", tl.root)], {tl.root}
    while stack:
        prefix, d = stack.pop()
        for name, inode in sorted(children.get(d, [])):
            path = f"{prefix}{name}"
            if inode in tl.dirs:
                if inode not in seen:     # a directory reachable twice (a rename kept, its removal lost) once
                    seen.add(inode)
                    files[path] = None
                    stack.append((path + "/", inode))
            else:
                files[path] = bytes(content(inode)) if inode in contents or inode not in tl.initial_inodes \
                    else open(tl.initial_inodes[inode], "rb").read()
    return State(files)


def describe_unit(tl: Timeline, uid: int) -> dict:
    """A unit as the report shows it: the call it came from, its file and range."""
    u = tl.units[uid]
    op = tl.recording.ops[u.op]
    out = {"lost": op.syscall, "path": op.path, "t": op.t}
    if op.path2:
        out["path2"] = op.path2
    if u.kind == "data":
        out["range"] = [u.offset, u.offset + len(u.data)]
    elif u.kind == "size":
        out["size"] = u.offset
    return out
