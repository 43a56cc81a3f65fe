"""The durability model the engine keeps (rules.md, "The model"): per path its dirty
data, intent and syncs; per directory the entries changed since its last sync; per
process its identity and I/O counts. Transitions (fsaudit.analysis.transitions) write
it, rules read it; what a rule must remember about a file goes in FileState.marks."""

from __future__ import annotations

import os.path
import sys
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from operator import attrgetter

from .roles import role_of


def dirname(path: str) -> str:
    """os.path.dirname of a str, less its steps for bytes and path-like objects (half its
    time; the engine asks it several times per call on a name)."""
    cut = path.rfind("/")
    if cut > 0 and path[cut - 1] != "/":    # most paths: no slashes to strip
        return path[:cut]
    head = path[:cut + 1]
    if head and head != "/" * len(head):
        return head.rstrip("/")
    return head


class Call(tuple):
    """An event kept in the model as evidence (a dirty file's first and last write, a
    create, a publication...), read like the event's dict, in under half its memory:
    its values as a tuple (itself: 48 bytes less than an object holding one), of a
    subclass per shape (the events' keys, in order) that holds the keys' places; strings
    interned but paths (the engine hands each event the model's own string for a path it
    knows; interned, each name also cost about 60 bytes of the interpreter's table), pids
    and tids shared, t_first the same float as t when equal, and lists of strings (flags)
    tuples. Every key is kept, so any reader sees the event as it came; only a reader
    that wrote to it would notice, and none does."""

    __slots__ = ()
    _index: dict = {}       # a shape's: key -> its place
    _shapes: dict = {}      # the events' keys, in order -> the builder of Calls of that shape (_builder)

    def __new__(cls, event: dict) -> Call:
        keys = tuple(event)
        build = Call._shapes.get(keys)
        if build is None:
            build = Call._shapes[keys] = _builder(keys)
        return build(event)

    def __getitem__(self, key):
        return _item(self, self._index[key])

    def get(self, key, default=None):
        place = self._index.get(key)
        return default if place is None else _item(self, place)

    def __contains__(self, key) -> bool:
        return key in self._index

    def __iter__(self):
        return iter(self._index)

    # As a Mapping (a tuple's len is already its number of keys), compared as one.
    keys, items, values, __eq__ = Mapping.keys, Mapping.items, Mapping.values, Mapping.__eq__
    __hash__ = __reversed__ = None

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __repr__(self) -> str:
        return f"Call({dict(self)!r})"

    def pick(self, keys: tuple) -> dict:
        """Those of keys it has, as a dict (a finding's evidence: without a call per key)."""
        index = self._index
        return {key: _item(self, index[key]) for key in keys if key in index}


_item = tuple.__getitem__
NAMES = frozenset({"path", "path2"})    # the keys of an event that name files (Engine.feed_all)
Mapping.register(Call)


# Ints kept calls share (the first seen: pids and tids come first in every event), at most so many.
INTS_SHARED = 4096
_ints: dict[int, int] = {}


def _builder(keys: tuple):
    """The function that makes a Call of this shape from an event: the Call subclass, and
    Call's treatment of each value written out key by key (the loop over the items it
    replaces took over twice as long, and a Call is made for most file events)."""
    shape = type("Call", (Call,), {"__slots__": (), "_index": {key: place for place, key in enumerate(keys)}})
    names = [f"v{place}" for place in range(len(keys))]
    values = f"({', '.join(names)}{',' if names else ''})"
    lines = ["def build(event):", f"    {values} = event.values()", "    previous = None"]
    for key, value in zip(keys, names):
        lines += [f"    kind = {value}.__class__",
                  # Paths are left as they are (Call), other strings interned.
                  "    if kind is str:", f"        {value} = {value if key in NAMES else f'intern({value})'}",
                  "    elif kind is float:",
                  f"        if {value} == previous:", f"            {value} = previous", f"        previous = {value}",
                  "    elif kind is int:",
                  f"        shared = ints.get({value})",
                  "        if shared is not None:", f"            {value} = shared",
                  "        elif len(ints) < INTS_SHARED:", f"            ints[{value}] = {value}",
                  # intern() refuses anything but a str (a subclass too): then the list stays one.
                  "    elif kind is list:", "        try:", f"            {value} = tuple(map(intern, {value}))",
                  "        except TypeError:", "            pass"]
    lines.append(f"    return new(shape, {values})")
    namespace = {"intern": sys.intern, "ints": _ints, "INTS_SHARED": INTS_SHARED, "new": tuple.__new__, "shape": shape}
    exec("\n".join(lines), namespace)
    return namespace["build"]


_last_kept: list = [None, None]     # the latest event kept, and its Call


def kept(event: dict | Call | None) -> Call | None:
    """The event as the model keeps it (Call); one already kept is itself. The same event
    kept twice (a write as dirty_last and odirect_event) is one Call, as evidence
    lists and `is` tests (published_dirty) need."""
    if event is None or isinstance(event, Call):
        return event
    if _last_kept[0] is not event:
        _last_kept[:] = event, Call(event)
    return _last_kept[1]


@dataclass(eq=False, slots=True)
class PendingEntries:
    """Directory entries changed by one process (one rule's kind of change) since the last dir sync."""

    first: dict
    last: dict
    names: dict             # every name changed, in order (a dict as an ordered set)
    count: int = 1
    intent: bool = False    # one of the entries was a data file the tree made durable (FS104's commit point)
    data: bool = False      # one of the entries was a data file's (roles)
    departures: bool = False    # every entry is a name moved out to another directory (FS102: info)


@dataclass(eq=False, slots=True)
class Writer:
    """One process's writes to one file not yet covered by a barrier (FileState.writers; FS106).
    An object of its own rather than a {pid: [first, last, reported]} dict per file: one file,
    one writer, 64 bytes instead of 312."""

    pid: int
    first: dict             # its first write not yet covered
    last: dict              # its latest write
    reported: dict | None = None    # `last` when a send last acknowledged its writes


# FileState.writers holds a file's only writer whose only write so far is one call (the
# common case: a file written once, then renamed or closed) as that call, the Call the
# model keeps anyway: a Writer of it, made when something is to be written to it, would
# be 64 bytes more a file. Readers take it as Writer(call["pid"], call, call); with a
# second writer, both are Writers.

def entry_of(state, pid: int) -> Writer | Call | None:
    """pid's entry in state.writers as it is held: a Writer, or a lone write standing for one."""
    entries = state.writers
    if entries is None:
        return None
    if entries.__class__ is Writer:
        return entries if entries.pid == pid else None
    if entries.__class__ is not tuple:      # a lone write (a Call)
        return entries if entries["pid"] == pid else None
    for entry in entries:
        if entry.pid == pid:
            return entry
    return None


def span(entry: Writer | Call) -> tuple:
    """(first, last) of an entry of state.writers."""
    return (entry.first, entry.last) if entry.__class__ is Writer else (entry, entry)


def pid_of(entry: Writer | Call) -> int:
    """The pid of an entry of state.writers."""
    return entry.pid if entry.__class__ is Writer else entry["pid"]


def writer(state, pid: int) -> Writer | None:
    """The Writer of pid on state, if any, for a caller that writes to it: a lone write
    becomes one here."""
    entry = entry_of(state, pid)
    if entry is None or entry.__class__ is Writer:
        return entry
    made = state.writers = Writer(pid, entry, entry)    # a lone write is the only entry
    return made


def writers_of(state) -> tuple:
    """Its entries (Writers, or a lone write: entry_of), in the order they came."""
    entries = state.writers
    return () if entries is None else entries if entries.__class__ is tuple else (entries,)


@dataclass(eq=False, slots=True)
class FileState:
    """One path (file or directory), shared by every fd, thread and process; moves with rename.
    A closed file with nothing in progress is kept as a SettledFile instead."""

    path: str
    is_dir: bool
    in_scope: bool
    _serial: int = 0                    # its number (serial) once asked for, else 0
    writes: int = 0
    bytes_written: int = 0
    syncs: int = 0
    last_sync_at: float | None = None
    last_sync_index: int = 0
    intent: bool = False
    # Dirty data: the first and last event that made it dirty, what no barrier covers yet.
    dirty_first: dict | None = None
    dirty_last: dict | None = None
    dirty_bytes: int = 0
    dirty_writes: int = 0
    # map_event, sfr_event, odirect_event, failed_sync, failed_sync_reported, unlinked,
    # child_intent and pending (Rarely) read and write as fields of their own.
    rarely: Rarely | None = None
    published_dirty: dict | None = None  # dirty_last when a rename/link already reported this data
    # Its writers (one per pid): the writes of each to this file since its own latest durability
    # barrier that no barrier of this file has covered yet (FS106). A Writer, or a tuple of them
    # in the order they came when there are several (writers_of); a 1-tuple was 48 bytes a file.
    # A lone writer of one call may be that call (entry_of).
    writers: Writer | tuple | Call | None = None
    created_event: dict | None = None   # created by the tree; cleared when renamed or unlinked
    created_index: int = 0
    marks: tuple | None = None          # (rule code, what that rule remembers here, ...) (Rule.recall)
    fixed_role: str | None = None       # a role its path decides (fsaudit.analysis.roles), else None
    conduct: int = 0                    # what the tree did with it, for the other roles (roles.BORN, ...)
    # The latest rename: for the live view's snapshot (fsaudit.analysis.snapshot), and for
    # FS103, whose pending creates move with a renamed directory.
    renamed_from: str | None = None     # the path before the latest rename
    renamed_index: int = 0
    sync_latencies_us: list | tuple = ()   # a list once it has one (an empty list each: 56 bytes a file)

    @property
    def serial(self) -> int:
        """Its own number, kept through settling and renames (a reader follows a file by it:
        fsaudit.analysis.snapshot). Given when first asked for: most files never are, and an
        int each was 32 bytes a file. Its copies (SettledFile, revive) carry it; one made
        before it was asked for replaced this state in Engine.files, where a reader asks."""
        serial = self._serial
        if not serial:
            serial = self._serial = next(_serials)
        return serial

    @property
    def is_dirty(self) -> bool:
        rarely = self.rarely
        return self.dirty_first is not None or (rarely is not None and rarely.map_event is not None)

    @property
    def role(self) -> str:
        return role_of(self)

    @property
    def is_data(self) -> bool:
        """Only data files are reported above info, count for FS106 and lend intent."""
        return role_of(self) == "data"

    @property
    def dirty_unreported(self) -> bool:
        """Dirty with data written since a rename rule last reported this file."""
        return self.is_dirty and (self.published_dirty is None or self.published_dirty is not self.dirty_last)

    def clear_dirty(self) -> None:
        self.dirty_first = self.dirty_last = None
        self.dirty_bytes = self.dirty_writes = 0
        rarely = self.rarely
        if rarely is not None:
            rarely.map_event = rarely.sfr_event = rarely.odirect_event = None

    @property
    def settled(self) -> bool:
        """A regular file no rule waits on: not dirty, no failure in progress, no rule's mark.
        (Written out rather than looped over fields: it runs at every close.)"""
        rarely = self.rarely
        return (not self.is_dir and self.dirty_first is None and self.marks is None and self.writers is None
                and (rarely is None or (rarely.map_event is None and rarely.sfr_event is None
                                        and rarely.odirect_event is None and rarely.failed_sync is None)))


@dataclass(eq=False, slots=True)
class Rarely:
    """The fields of a FileState that most never set, apart: 56 bytes less a file (of 288).
    FileState reads and writes them as its own (RARELY), making this when one is first set."""

    map_event: dict | None = None       # writable MAP_SHARED mapping not msync'd/fsync'd since
    sfr_event: dict | None = None       # sync_file_range on data still dirty
    odirect_event: dict | None = None   # O_DIRECT write not covered by a barrier
    failed_sync: dict | None = None     # the latest sync attempt failed (model: FS201/FS202)
    failed_sync_reported: bool = False
    unlinked: bool = False              # set as the state leaves `files`
    child_intent: bool = False          # directories: a file in it has intent
    pending: dict | None = None         # directories: (rule, pid) -> PendingEntries


RARELY = {field.name: field.default for field in fields(Rarely)}


def _rarely_field(name: str, default) -> property:
    def read(state):
        rarely = state.rarely
        return default if rarely is None else getattr(rarely, name)

    def write(state, value) -> None:
        rarely = state.rarely
        if rarely is None:
            if value is default:
                return
            rarely = state.rarely = Rarely()
        setattr(rarely, name, value)

    return property(read, write)


for _name, _default in RARELY.items():
    setattr(FileState, _name, _rarely_field(_name, _default))


# Fields a settled file no longer needs: the rest of the dirty data and published_dirty
# are read only while dirty_first is set, failed_sync_reported only with failed_sync,
# unlinked once the state has left `files`; child_intent and pending are for directories;
# rarely holds these and the ones `settled` says are unset.
MOOT_WHEN_SETTLED = frozenset({"dirty_last", "dirty_bytes", "dirty_writes", "published_dirty",
                               "failed_sync_reported", "unlinked", "child_intent", "pending", "rarely"})


class SettledFile:
    """A closed file's state once settled (FileState.settled), in half the memory (100 000
    files written, synced and closed: 18 MB instead of 38 MB): the fields that can still
    differ from their defaults; every other FileState field reads as its default. Engine.feed
    makes it a FileState again for an event naming its path, and node() before writing to it,
    so only whole-table passes (sync, a directory's move) and renames and links (which write
    no other field: engine.NAMING_SYSCALLS) write here, to its slots."""

    __slots__ = ("path", "in_scope", "_serial", "writes", "bytes_written", "syncs", "last_sync_at",
                 "last_sync_index", "intent", "created_event", "created_index", "renamed_from", "renamed_index",
                 "sync_latencies_us", "fixed_role", "conduct")
    is_dir = is_dirty = dirty_unreported = False
    role, is_data, serial = FileState.role, FileState.is_data, FileState.serial

    # Written out, slot by slot, rather than looped over __slots__: every close settles a
    # state and every call on a settled path revives one (2.3 and 2.8 us looped, 0.9 and
    # 1.4 written out). tests/test_engine.py checks that they copy every slot.
    def __init__(self, state: FileState) -> None:
        (self.path, self.in_scope, self._serial, self.writes, self.bytes_written, self.syncs, self.last_sync_at,
         self.last_sync_index, self.intent, self.created_event, self.created_index, self.renamed_from,
         self.renamed_index, latencies, self.fixed_role, self.conduct) = _settled_fields(state)
        self.sync_latencies_us = tuple(latencies)   # 40 bytes less than a list

    def revive(self) -> FileState:
        return FileState(self.path, False, self.in_scope, self._serial, self.writes, self.bytes_written, self.syncs,
                         self.last_sync_at, self.last_sync_index, self.intent, created_event=self.created_event,
                         created_index=self.created_index, renamed_from=self.renamed_from,
                         renamed_index=self.renamed_index,
                         sync_latencies_us=list(self.sync_latencies_us) if self.sync_latencies_us else (),
                         fixed_role=self.fixed_role, conduct=self.conduct)


_settled_fields = attrgetter(*SettledFile.__slots__)
_serials = itertools.count(1)     # FileState.serial's, across engines

# The defaults come from FileState itself, so a field added there needs no copy here.
for _field in fields(FileState):
    if _field.name not in SettledFile.__slots__ and _field.default is not MISSING:
        setattr(SettledFile, _field.name, _field.default)
for _name, _default in RARELY.items():
    setattr(SettledFile, _name, _default)


@dataclass(slots=True)
class ProcessIO:
    writes: int = 0
    bytes_written: int = 0
    write_sizes: Counter = field(default_factory=Counter)   # size -> calls
    fsync: int = 0
    fdatasync: int = 0
    sync_file_range: int = 0
    o_sync_writes: int = 0
    o_direct_writes: int = 0
    dir_syncs: int = 0
    renames: int = 0
    links: int = 0
    fsync_latencies_us: list = field(default_factory=list)


@dataclass(slots=True, eq=False)
class ProcessInfo:
    """One program image a process ran: from its fork (the parent's image), its exec, or
    the attach that adopted it, to its next exec or its exit. A process that exec'd has
    one per image, the latest in Engine.processes, the earlier ones by `previous`."""

    pid: int
    ppid: int | None = None
    exe: str | None = None
    argv: list | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    exited: bool = False
    runtime: dict | None = None         # {"name", "version"} from the image's `runtime` event
    syscalls: int = 0                   # traced calls, each call of a write run counted (live view)
    io: ProcessIO = field(default_factory=ProcessIO)
    exec_at: float | None = None        # t of the exec that started this image
    previous: ProcessInfo | None = None  # the image the process ran before that exec
    forked: bool = False                # began at a fork, as a copy of the parent's image
    listed: bool = True                 # in the report's processes[] (not a fork child's moment before its exec)

    @property
    def name(self) -> str:
        if self.argv:
            return os.path.basename(self.argv[0]) or self.argv[0]
        if self.exe:
            return os.path.basename(self.exe)
        return "process"

    def at(self, t: float | None) -> ProcessInfo:
        """The image of this process that was running at time t."""
        info = self
        while info.previous is not None and t is not None and info.exec_at is not None and t < info.exec_at:
            info = info.previous
        return info

    @property
    def did_io(self) -> bool:
        io = self.io
        return bool(io.writes or io.fsync or io.fdatasync or io.sync_file_range or io.dir_syncs
                    or io.renames or io.links)


@dataclass(slots=True)
class Counts:
    events: int = 0
    lost_events: int = 0
