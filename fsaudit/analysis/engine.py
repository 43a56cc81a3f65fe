"""The analysis engine: a pure function of the resolved event stream.

It keeps the durability model of the rule catalogue ("The model"): per path, the
dirty data no barrier covers yet, the intent to be durable, and per directory
the entries changed since its last sync. Rules (fsaudit.rules) read that model
through hooks called *before* the engine applies each event, so they see the
state at the time of the call, and again at the end of observation.
"""

from __future__ import annotations

import os.path
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .config import EngineConfig
from .fixes import fix_for, notes_for
from .rules import RULES, RULES_BY_CODE
from .rules.base import (
    COPY_SYSCALLS, LINK_SYSCALLS, OPEN_SYSCALLS, RENAME_SYSCALLS, UNLINK_SYSCALLS, WRITE_SYSCALLS,
    discards_content, is_synced_write, succeeded,
)

UNSCOPED_PREFIXES = ("/proc/", "/sys/", "/dev/")
UNSCOPED_ROOTS = frozenset({"/proc", "/sys", "/dev"})
# A directory sync failing with these says "not supported here", not "data lost" (rules.md).
DIR_SYNC_ERRORS_NOT_DATA_LOSS = frozenset({"EINVAL", "EBADF", "EROFS"})


@dataclass(eq=False, slots=True)
class PendingEntries:
    """Directory entries changed by one process (one rule's kind of change) since the last dir sync."""

    first: dict
    last: dict
    name: str
    count: int = 1
    intent: bool = False


@dataclass(eq=False, slots=True)
class FileState:
    """One path (file or directory), shared by every fd, thread and process; moves with rename.
    A closed file with nothing in progress is kept as a SettledFile instead."""

    path: str
    is_dir: bool
    in_scope: bool
    writes: int = 0
    bytes_written: int = 0
    syncs: int = 0
    last_sync_at: float | None = None
    last_sync_index: int = 0
    intent: bool = False
    child_intent: bool = False          # directories: a file in it has intent
    # Dirty data: the first and last event that made it dirty, what no barrier covers yet.
    dirty_first: dict | None = None
    dirty_last: dict | None = None
    dirty_bytes: int = 0
    dirty_writes: int = 0
    map_event: dict | None = None       # writable MAP_SHARED mapping not msync'd/fsync'd since
    sfr_event: dict | None = None       # sync_file_range on data still dirty
    odirect_event: dict | None = None   # O_DIRECT write not covered by a barrier
    published_dirty: dict | None = None  # dirty_last when a rename/link already reported this data
    created_event: dict | None = None   # created by the tree; cleared when renamed or unlinked
    created_index: int = 0
    pending: dict | None = None         # directories: (rule, pid) -> PendingEntries
    # Rule-owned bookkeeping (see fsaudit/rules).
    ack_event: dict | None = None
    ack_dirty_event: dict | None = None
    truncated_event: dict | None = None
    failed_sync: dict | None = None     # the latest sync attempt failed (model: FS201/FS202)
    failed_sync_reported: bool = False
    failed_write: dict | None = None
    lost_bytes: int = 0
    failed_close: dict | None = None
    # For the live view only (fsaudit.live); no rule reads them.
    renamed_from: str | None = None     # the path before the latest rename
    renamed_index: int = 0
    unlinked: bool = False              # set as the state leaves `files`
    sync_latencies_us: list = field(default_factory=list)

    @property
    def is_dirty(self) -> bool:
        return self.dirty_first is not None or self.map_event is not None

    @property
    def dirty_unreported(self) -> bool:
        """Dirty with data written since a rename rule last reported this file."""
        return self.is_dirty and (self.published_dirty is None or self.published_dirty is not self.dirty_last)

    def clear_dirty(self) -> None:
        self.dirty_first = self.dirty_last = self.map_event = self.sfr_event = self.odirect_event = None
        self.dirty_bytes = self.dirty_writes = 0

    @property
    def settled(self) -> bool:
        """A regular file no rule waits on: not dirty, no failure or finding in progress.
        A SettledFile drops what is moot then: published_dirty (read only while dirty)
        and failed_sync_reported (only with failed_sync)."""
        return (not self.is_dir and self.dirty_first is None and self.map_event is None
                and self.sfr_event is None and self.odirect_event is None and self.ack_event is None
                and self.truncated_event is None and self.failed_sync is None
                and self.failed_write is None and not self.lost_bytes and self.failed_close is None)


class SettledFile:
    """A closed file's state once settled (FileState.settled), in half the memory (100 000
    files written, synced and closed: 18 MB instead of 38 MB): the fields that can still
    differ from their defaults; the others read as their defaults. Engine.feed makes it a
    FileState again for an event naming its path, and node() before writing to it, so only
    whole-table passes (sync, a directory's move) write here, to its slots."""

    __slots__ = ("path", "in_scope", "writes", "bytes_written", "syncs", "last_sync_at", "last_sync_index",
                 "intent", "created_event", "created_index", "renamed_from", "renamed_index", "sync_latencies_us")
    is_dir = child_intent = is_dirty = dirty_unreported = unlinked = failed_sync_reported = False
    dirty_bytes = dirty_writes = lost_bytes = 0
    dirty_first = dirty_last = map_event = sfr_event = odirect_event = published_dirty = pending = None
    ack_event = ack_dirty_event = truncated_event = failed_sync = failed_write = failed_close = None

    def __init__(self, state: FileState) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(state, name))
        self.sync_latencies_us = tuple(state.sync_latencies_us)   # 40 bytes less than a list

    def revive(self) -> FileState:
        state = FileState(self.path, False, self.in_scope)
        for name in self.__slots__:
            setattr(state, name, getattr(self, name))
        state.sync_latencies_us = list(self.sync_latencies_us)
        return state


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


def run_call_sizes(calls: int, nbytes: int, size_max: int | None) -> list[tuple[int, int]]:
    """(size, calls) pairs for a write run, which the kernel folds into calls, bytes
    and the largest call. Exact for single calls, uniform runs, and runs of two.
    Otherwise the run is taken as largest-size calls plus one remainder, the way
    buffered writers write (full buffers, then the tail), when the bytes allow
    it; else as one largest call and the rest at their mean."""
    if calls == 1:
        return [(nbytes, 1)]
    if not size_max:      # a log from before runs carried their largest call
        return [(nbytes // calls, calls)]
    rest = nbytes - size_max * (calls - 1)
    if rest == size_max:
        return [(size_max, calls)]
    if 0 < rest < size_max:
        return [(size_max, calls - 1), (rest, 1)]
    return [(size_max, 1), ((nbytes - size_max) // (calls - 1), calls - 1)]


@dataclass(slots=True)
class ProcessInfo:
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

    @property
    def name(self) -> str:
        if self.argv:
            return os.path.basename(self.argv[0]) or self.argv[0]
        if self.exe:
            return os.path.basename(self.exe)
        return "process"


@dataclass(slots=True)
class Counts:
    events: int = 0
    lost_events: int = 0


@dataclass
class Finding:
    rule: str
    name: str
    severity: str
    pid: int
    tid: int
    path: str | None
    message: str
    evidence: list
    fix: str
    target_path: str | None = None
    runtime: str | None = None
    stack: list | None = None
    count: int = 1
    notes: list = field(default_factory=list)   # known runtime bugs that can explain it (fsaudit.fixes)


EVIDENCE_KEYS = ("t", "pid", "tid", "syscall", "fd", "ret", "calls", "bytes")


def _evidence(events: list) -> list[dict]:
    """The few events that make a finding true, once each, as small dicts."""
    out, seen = [], set()
    for event in events:
        if event is not None and id(event) not in seen:
            seen.add(id(event))
            out.append({key: event[key] for key in EVIDENCE_KEYS if key in event})
    return out[:4]


def _stack(event: dict | None, evidence: list) -> list | None:
    """--stacks: where in the code the triggering call was made, else the
    latest evidence event that has a stack (an exit has none; its last write has)."""
    if event is not None and "stack" in event:
        return event["stack"]
    return next((e["stack"] for e in reversed(evidence) if e is not None and "stack" in e), None)


class Engine:
    def __init__(self, config: EngineConfig | None = None, *, root_pid: int | None = None) -> None:
        config = self.config = config or EngineConfig()
        self._include = list(config.include)
        self._exclude = list(config.exclude)
        self._suppressions = [(s.rule, s.path) for s in config.suppressions]
        self._severity = dict(config.severity)
        self.rules = [rule for rule in RULES if rule.code not in config.disabled]
        self._enabled = frozenset(rule.code for rule in self.rules)
        self._hooks: dict[str, list] = {}
        for rule in self.rules:
            for syscall in rule.syscalls:
                self._hooks.setdefault(syscall, []).append(rule.on_event)
        self.root_pid = root_pid
        self.files: dict[str, FileState] = {}
        self.processes: dict[int, ProcessInfo] = {}
        self.counts = Counts()
        self.injections_fired: dict[str, int] = {}     # --inject spec -> calls failed on purpose
        self.root_exit: dict | None = None
        self.dirty_since_send: set[FileState] = set()   # became dirty after the latest send (FS106)
        self._findings: dict[tuple, Finding] = {}
        self._hidden: dict[tuple, int] = {}             # a suppressed finding's key -> its suppression's index
        self._gone: set[str] = set()                    # paths known not to exist (unlinked, renamed away)
        self.pending_dirs: set[FileState] = set()       # directories with pending entries
        self._pinned: set[FileState] = set()            # shown by the live view: never settled
        self._index = 0
        self._finished = False
        self._handlers = {"fsync": self._on_fsync, "fdatasync": self._on_fsync,
                          "sync_file_range": self._on_sync_file_range, "sync": self._on_sync,
                          "syncfs": self._on_sync, "msync": self._on_msync, "mmap": self._on_mmap,
                          "truncate": self._on_truncate, "ftruncate": self._on_truncate,
                          "fallocate": self._on_fallocate, "mkdir": self._on_mkdir, "mkdirat": self._on_mkdir,
                          "symlink": self._on_new_name, "symlinkat": self._on_new_name,
                          "mknod": self._on_mknod, "mknodat": self._on_mknod,
                          "fork": self._on_fork, "exec": self._on_exec, "exit": self._on_exit,
                          "adopt": self._on_adopt,
                          "lost": self._on_lost, "runtime": self._on_runtime, "close": self._on_close}
        for names, handler in ((WRITE_SYSCALLS, self._on_write), (COPY_SYSCALLS, self._on_copy),
                               (RENAME_SYSCALLS, self._on_rename), (LINK_SYSCALLS, self._on_link),
                               (UNLINK_SYSCALLS, self._on_unlink), (OPEN_SYSCALLS, self._on_open)):
            for name in names:
                self._handlers[name] = handler

    # Public interface.

    @property
    def findings(self) -> list[Finding]:
        return list(self._findings.values())

    def hidden_by_suppression(self) -> list[int]:
        """How many findings each of config.suppressions hid, in order."""
        counts = Counter(self._hidden.values())
        return [counts[index] for index in range(len(self._suppressions))]

    def enabled(self, code: str) -> bool:
        return code in self._enabled

    def feed(self, event: dict) -> None:
        self._index += 1
        self.counts.events += 1
        pid = event.get("pid", 0)
        info = self.processes.get(pid)
        if info is None and pid:
            info = self.processes[pid] = ProcessInfo(pid)
            if self.root_pid is None:
                self.root_pid = pid
        if info is not None:
            info.syscalls += event.get("calls", 1)
        if "injected" in event:
            spec = event.get("injection", "")
            self.injections_fired[spec] = self.injections_fired.get(spec, 0) + 1
        # Hooks and handlers write to the states of the paths the event names: a settled
        # one is a FileState again while they run, and settles again if it still is.
        revived = []
        for key in ("path", "path2"):
            path = event.get(key)
            state = self.files.get(path)
            if state.__class__ is SettledFile:
                state = self.files[path] = state.revive()
                revived.append(state)
        syscall = event["syscall"]
        hooks = self._hooks.get(syscall)
        if hooks:
            for hook in hooks:
                hook(self, event)
        handler = self._handlers.get(syscall)
        if handler is not None:
            handler(event)
        for state in revived:
            self._settle(state)

    def finish(self, exit_status: dict | int | None = None) -> None:
        """End of observation. exit_status: the tree's exit ({"code", "signal"} or a code) when known
        from outside; otherwise the root process's exit event decides."""
        if self._finished:
            return
        self._finished = True
        if isinstance(exit_status, int):
            self.root_exit = {"code": exit_status, "signal": None}
        elif exit_status:
            self.root_exit = {"code": exit_status.get("code"), "signal": exit_status.get("signal")}
        else:
            root = self.processes.get(self.root_pid)
            if root is not None and root.exited:
                self.root_exit = {"code": root.exit_code, "signal": root.exit_signal}
        for rule in self.rules:
            rule.on_finish(self)
        for finding in self._findings.values():
            if finding.runtime is None:
                self._apply_runtime(finding)

    @property
    def tree_exited_ok(self) -> bool:
        exit_ = self.root_exit
        return bool(exit_) and exit_.get("code") == 0 and not exit_.get("signal")

    # Helpers for rules.

    def in_scope(self, path: str | None) -> bool:
        # Not cached: it runs when a path gets its FileState (which keeps the answer) and on
        # namespace calls, and a cache keeps every path ever seen (17 MB for 100 000 files).
        if not path or not path.startswith("/") or path.startswith(UNSCOPED_PREFIXES) or path in UNSCOPED_ROOTS:
            return False
        if any(fnmatchcase(path, glob) for glob in self._exclude):
            return False
        return not self._include or any(fnmatchcase(path, glob) for glob in self._include)

    def node(self, path: str, is_dir: bool = False) -> FileState:
        state = self.files.get(path)
        if state is None:
            state = self.files[path] = FileState(path, is_dir, self.in_scope(path))
        else:
            if state.__class__ is SettledFile:   # callers write to it; a parent is not named by the event
                state = self.files[path] = state.revive()
            if is_dir:
                state.is_dir = True
        return state

    def pin(self, states: list) -> list[FileState]:
        """The live view's rows as FileStates that stay the same objects (never settled)
        until the next pin, so that a row follows its file through a rename or an unlink."""
        pinned = [self.node(state.path) if state.__class__ is SettledFile else state for state in states]
        self._pinned = set(pinned)
        return pinned

    def has_intent(self, state: FileState) -> bool:
        if state.intent:
            return True
        parent = self.files.get(os.path.dirname(state.path))
        return parent is not None and parent.child_intent

    def process_label(self, pid: int) -> str:
        info = self.processes.get(pid)
        return f"{info.name if info else 'process'} (pid {pid})"

    def report(self, code: str, event: dict | None, path: str | None, message: str, evidence: list,
               target_path: str | None = None, pid: int | None = None, count: int = 1) -> None:
        """Record a finding, or count it again: one finding per (rule, path, pid)."""
        if pid is None:
            pid = event.get("pid", 0) if event else (self.root_pid or 0)
        key = (code, path, pid)
        found = self._findings.get(key)
        if found is not None:
            found.count += count
            return
        if key in self._hidden:
            return
        if path:
            for index, (rule, glob) in enumerate(self._suppressions):
                if rule == code and fnmatchcase(path, glob):
                    self._hidden[key] = index
                    return
        rule = RULES_BY_CODE[code]
        finding = self._findings[key] = Finding(
            rule=code, name=rule.name, severity=self._severity.get(code, rule.severity),
            pid=pid, tid=event.get("tid", pid) if event else pid, path=path, target_path=target_path,
            message=message, evidence=_evidence(evidence), fix=rule.fix,
            stack=_stack(event, evidence), count=count)
        self._apply_runtime(finding)

    def _apply_runtime(self, finding: Finding) -> None:
        """The runtime of the finding's process as it is now (a later exec may change
        it; finish() fills in those whose runtime was announced after the finding)."""
        info = self.processes.get(finding.pid)
        runtime = info.runtime if info else None
        if runtime is None:
            return
        finding.runtime = runtime["name"]
        finding.fix = fix_for(finding.rule, runtime, RULES_BY_CODE[finding.rule].fix)
        finding.notes = notes_for(finding.rule, runtime)

    # The model.

    def _file_event(self, event: dict) -> FileState | None:
        """The in-scope regular file an fd event is about, else None."""
        if event.get("kind") != "file":
            return None
        path = event.get("path")
        if not path:
            return None
        state = self.node(path)
        return state if state.in_scope and not state.is_dir else None

    def _make_dirty(self, state: FileState, event: dict, nbytes: int, calls: int) -> None:
        if state.dirty_first is None:
            state.dirty_first = event
            self.dirty_since_send.add(state)
        state.dirty_last = event
        state.dirty_bytes += nbytes
        state.dirty_writes += calls

    def _mark_intent(self, state: FileState) -> None:
        state.intent = True
        self.node(os.path.dirname(state.path), is_dir=True).child_intent = True

    def _on_write(self, event: dict) -> None:
        nbytes = event.get("ret")
        if not isinstance(nbytes, int) or nbytes <= 0:
            return
        state = self._file_event(event)
        if state is None:
            return
        calls = event.get("calls", 1)
        state.writes += calls
        state.bytes_written += nbytes
        io = self.processes[event["pid"]].io
        io.writes += calls
        io.bytes_written += nbytes
        for size, count in run_call_sizes(calls, nbytes, event.get("size_max")):
            io.write_sizes[size] += count
        o_direct = event.get("o_direct")
        if o_direct:
            io.o_direct_writes += calls
        if is_synced_write(event):
            io.o_sync_writes += calls
            self._mark_intent(state)
            return
        self._make_dirty(state, event, nbytes, calls)
        if o_direct and state.odirect_event is None:
            state.odirect_event = event

    def _on_copy(self, event: dict) -> None:
        nbytes = event.get("bytes") or 0
        if not succeeded(event) or nbytes <= 0:
            return
        state = self._file_event(event)
        if state is None:
            return
        state.writes += 1
        state.bytes_written += nbytes
        self._make_dirty(state, event, nbytes, 1)

    def _on_truncate(self, event: dict) -> None:
        if not succeeded(event):
            return
        if event["syscall"] == "truncate":
            state = self.node(event["path"]) if event.get("path") else None
            state = state if state is not None and state.in_scope and not state.is_dir else None
        else:
            state = self._file_event(event)
        if state is None:
            return
        size_before = event.get("size_before")
        if size_before is None or size_before != event.get("length"):
            self._make_dirty(state, event, 0, 0)

    def _on_fallocate(self, event: dict) -> None:
        state = self._file_event(event) if succeeded(event) else None
        if state is not None:
            self._make_dirty(state, event, 0, 0)

    def _on_mmap(self, event: dict) -> None:
        if not succeeded(event) or "MAP_SHARED" not in event.get("flags", ()) or "PROT_WRITE" not in event.get("prot", ()):
            return
        state = self._file_event(event)
        if state is not None and state.map_event is None:
            state.map_event = event
            self.dirty_since_send.add(state)

    def _on_msync(self, event: dict) -> None:
        state = self.files.get(event.get("path") or "")
        if state is None:
            return
        self._sync_attempted(state, event)
        if succeeded(event) and "MS_SYNC" in event.get("flags", ()):
            state.map_event = None

    @staticmethod
    def _sync_attempted(state: FileState, event: dict) -> None:
        """Remember whether the latest sync of this file failed in a way that can lose data."""
        ret = event.get("ret")
        if isinstance(ret, str) and not (state.is_dir and ret in DIR_SYNC_ERRORS_NOT_DATA_LOSS):
            state.failed_sync = event
            state.failed_sync_reported = False
        else:
            state.failed_sync = None

    def _on_fsync(self, event: dict) -> None:
        path = event.get("path")
        if not path:
            return
        state = self.files.get(path)
        kind = event.get("kind")
        is_dir = kind == "dir" or (state is not None and state.is_dir)
        if not is_dir and kind != "file":
            return
        state = self.node(path, is_dir)
        # A directory outside --path still holds in-scope entries: its syncs always count.
        if not is_dir and not state.in_scope:
            return
        io = self.processes[event["pid"]].io
        if is_dir:
            io.dir_syncs += 1
        else:
            if event["syscall"] == "fsync":
                io.fsync += 1
            else:
                io.fdatasync += 1
            latency = event.get("latency_us")
            if latency is not None:
                io.fsync_latencies_us.append(latency)
                state.sync_latencies_us.append(latency)
        self._sync_attempted(state, event)
        if not succeeded(event):
            return
        state.syncs += 1
        state.last_sync_at = event.get("t")
        state.last_sync_index = self._index
        if is_dir:
            state.pending = None
            self.pending_dirs.discard(state)
        else:
            state.clear_dirty()
            self.dirty_since_send.discard(state)
            self._mark_intent(state)

    def _on_sync_file_range(self, event: dict) -> None:
        state = self._file_event(event)
        if state is None:
            return
        self.processes[event["pid"]].io.sync_file_range += 1
        self._sync_attempted(state, event)
        if succeeded(event) and state.is_dirty:
            state.sfr_event = event

    def _on_sync(self, event: dict) -> None:
        """sync/syncfs: every file and directory entry is on disk (FS304 reports the call)."""
        if not succeeded(event):
            return
        for state in self.files.values():
            if state.is_dirty:
                state.clear_dirty()
            state.last_sync_index = self._index
        for directory in self.pending_dirs:
            directory.pending = None
        self.pending_dirs.clear()

    def _pend(self, directory: str, code: str, event: dict, name: str, intent: bool = False) -> None:
        state = self.node(directory, is_dir=True)
        if state.pending is None:
            state.pending = {}
            self.pending_dirs.add(state)
        key = (code, event["pid"])
        entries = state.pending.get(key)
        if entries is None:
            state.pending[key] = PendingEntries(event, event, name, intent=intent)
        else:
            entries.last = event
            entries.count += 1
            entries.intent = entries.intent or intent

    def _on_open(self, event: dict) -> None:
        kind = event.get("kind")
        path = event.get("path")
        if not succeeded(event) or kind not in ("file", "dir") or not path:
            return
        flags = event.get("flags", ())
        created = "O_CREAT" in flags and (event.get("created") or "O_EXCL" in flags or path in self._gone)
        state = self.node(path, kind == "dir")
        if created:
            self._gone.discard(path)
            state.created_event = event
            state.created_index = self._index
        if ("O_TRUNC" in flags and state.in_scope and not state.is_dir
                and discards_content(event)):
            self._make_dirty(state, event, 0, 0)

    def _on_mkdir(self, event: dict) -> None:
        if succeeded(event) and event.get("path"):
            self._gone.discard(event["path"])
            state = self.node(event["path"], is_dir=True)
            state.created_event = event
            state.created_index = self._index

    def _on_mknod(self, event: dict) -> None:
        if succeeded(event) and event.get("path"):
            self._gone.discard(event["path"])

    def _on_new_name(self, event: dict) -> None:
        if succeeded(event) and event.get("path2"):
            self._gone.discard(event["path2"])

    def _move(self, old: str, new: str) -> None:
        """The state of old (and of everything under it, for a directory) now lives at new."""
        state = self.files.pop(old, None)
        self.dirty_since_send.discard(self.files.pop(new, None))
        self._gone.add(old)
        self._gone.discard(new)
        if state is None:
            return
        state.path = new
        state.renamed_from, state.renamed_index = old, self._index
        state.in_scope = self.in_scope(new)
        state.created_event, state.created_index = None, 0   # the rename's own directory entry is what matters now
        self.files[new] = state
        if state.is_dir:
            prefix = old + "/"
            for child in [p for p in self.files if p.startswith(prefix)]:
                moved = self.files.pop(child)
                moved.path = new + child[len(old):]
                moved.in_scope = self.in_scope(moved.path)
                self.files[moved.path] = moved

    def _on_rename(self, event: dict) -> None:
        old, new = event.get("path"), event.get("path2")
        if not succeeded(event) or not old or not new:
            return
        self.processes[event["pid"]].io.renames += 1
        self._move(old, new)
        if self.in_scope(new) or self.in_scope(old):
            old_dir, new_dir = os.path.dirname(old), os.path.dirname(new)
            self._pend(new_dir, "FS102", event, new)
            if old_dir != new_dir:
                self._pend(old_dir, "FS102", event, new)

    def _on_link(self, event: dict) -> None:
        new = event.get("path2")
        if not succeeded(event) or not new:
            return
        self._gone.discard(new)
        self.processes[event["pid"]].io.links += 1
        if self.in_scope(new):
            self._pend(os.path.dirname(new), "FS102", event, new)

    def _on_unlink(self, event: dict) -> None:
        path = event.get("path")
        if not succeeded(event) or not path:
            return
        state = self.files.pop(path, None)
        if state is not None:
            state.unlinked = True
        self._gone.add(path)
        self.dirty_since_send.discard(state)
        if self.in_scope(path):
            self._pend(os.path.dirname(path), "FS104", event, path, intent=state is not None and state.intent)

    def _settle(self, state: FileState | None) -> None:
        """Compact a file's state when nothing is in progress on it (SettledFile)."""
        if (state.__class__ is FileState and state.settled and state not in self._pinned
                and self.files.get(state.path) is state):
            self.files[state.path] = SettledFile(state)
            self.dirty_since_send.discard(state)   # a sync() cleans without taking it out

    def _on_close(self, event: dict) -> None:
        self._settle(self.files.get(event.get("path")))

    def _on_fork(self, event: dict) -> None:
        child = event.get("child")
        if not child:
            return
        parent = self.processes[event["pid"]]
        info = self.processes.get(child)
        if info is None:
            info = self.processes[child] = ProcessInfo(child)
        info.ppid = parent.pid
        info.exe, info.argv, info.runtime = parent.exe, parent.argv, parent.runtime

    def _on_adopt(self, event: dict) -> None:
        info = self.processes[event["pid"]]
        info.ppid = event.get("ppid", info.ppid)
        info.exe = event.get("exe") or info.exe
        info.argv = event.get("argv") or info.argv

    def _on_exec(self, event: dict) -> None:
        info = self.processes[event["pid"]]
        info.exe = event.get("path", info.exe)
        info.runtime = None     # a new image: its `runtime` event follows
        if event.get("argv"):
            info.argv = event["argv"]

    def _on_runtime(self, event: dict) -> None:
        self.processes[event["pid"]].runtime = {"name": event["name"], "version": event.get("version")}

    def _on_exit(self, event: dict) -> None:
        info = self.processes[event["pid"]]
        info.exited = True
        info.exit_code = event.get("code")
        info.exit_signal = event.get("signal")

    def _on_lost(self, event: dict) -> None:
        self.counts.lost_events += event.get("count", 0)

