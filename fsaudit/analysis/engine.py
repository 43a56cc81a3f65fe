"""The analysis engine: a pure function of the resolved event stream.

It feeds each event to the rules' hooks (fsaudit.analysis.rules), which see the model
(fsaudit.analysis.model) as it was at the time of the call, then applies the event to
the model (fsaudit.analysis.transitions); at the end of observation the rules look once
more. Live tracing and `fsaudit report` replay run the same engine on the same events.
"""

from __future__ import annotations

from collections import deque

from .config import EngineConfig, Suppression
from .findings import Findings
from .grouping import Group
from .model import Counts, FileState, ProcessInfo, SettledFile, dirname
from .roles import Roles
from .rules import RULES
from .rules.base import LINK_SYSCALLS, RENAME_SYSCALLS
from .scope import Scope
from .transitions import HANDLERS

# States that changed place, kept for a reader that follows files it has seen between two of its
# looks (fsaudit.analysis.snapshot, 5 a second): analysis runs at about 35 000 events a second,
# so a fifth of a second holds at most about 7 000 renames or unlinks. A directory's move counts
# each file under it.
MOVES_KEPT = 8192
# Calls that only move or add names: their hooks and transitions write no more of a settled
# file than SettledFile holds (its path, place, conduct, rename), so feed_all leaves it settled
# (a revival and a settling less per file renamed into place); FS101, which marks the file a
# rename puts in place of a published one, makes it a FileState itself (Engine.node).
NAMING_SYSCALLS = RENAME_SYSCALLS | LINK_SYSCALLS


class Engine:
    def __init__(self, config: EngineConfig | None = None, *, root_pid: int | None = None,
                 header: dict | None = None) -> None:
        """header: the event log's, whose `mounts` and `cache_home` decide roles (docs/events.md)."""
        config = self.config = config or EngineConfig()
        header = header or {}
        self.rules = [rule for rule in RULES if rule.code not in config.disabled]
        self._enabled = frozenset(rule.code for rule in self.rules)
        # syscall -> (the rules' hooks, the transition, whether it revives settled files): one
        # lookup per event; a syscall that neither knows (munmap, lseek without a rule) misses
        # it and costs nothing more.
        self._dispatch: dict[str, tuple[tuple, object, bool]] = {}
        self._awake: set[str] = set()       # codes of the rules woken (Rule.idle_syscalls)
        self._reasons_seen: set[str] = set()    # what wake() was given: it wakes every rule it can at once
        self._route()
        self.scope = Scope(config.include, config.exclude)
        self.roles = Roles(config, header.get("mounts"), header.get("cache_home"))
        self.root_pid = root_pid
        # The model, written by the transitions.
        self.files: dict[str, FileState | SettledFile] = {}
        self.processes: dict[int, ProcessInfo] = {}     # pid -> the image it runs (or ran last)
        self.images: list[ProcessInfo] = []             # every image of every process, in order
        self.counts = Counts()
        self.injections_fired: dict[str, int] = {}     # --inject spec -> calls failed on purpose
        self.root_exit: dict | None = None
        # Dicts used as ordered sets (values None): rules walk them, and a set's order is the
        # states' addresses, so the findings and their evidence would differ from run to run.
        self.written_by: dict[int, dict[FileState, None]] = {}   # pid -> files with its writes in FileState.writers
        self.acknowledgements = 0                       # sends to the outside world so far
        self.replies: dict[int, dict] = {}              # pid -> fd -> FS106's replies awaiting a commit reply
        self.publications: dict[str, dict] = {}         # FS101's open windows by directory (an ordered set each)
        self.gone: set[str] = set()                     # paths known not to exist (unlinked, renamed away)
        self.removed_roles: dict[str, str] = {}         # unlinked path -> its file's role, when not data
        self.not_files: set[str] = set()                # names of sockets, FIFOs, devices: never files
        self.pending_dirs: dict[FileState, None] = {}   # directories with pending entries
        self.index = 0                                  # the current event's position in the stream
        # The latest states renamed, moved with their directory, unlinked or renamed over, oldest
        # first, and how many there have been in all (not only those still kept).
        self.recent_moves: deque = deque(maxlen=MOVES_KEPT)
        self.move_count = 0
        self._findings = Findings(config, self.processes, self.role_at_end)
        self.groups: list[Group] = []                   # the findings by cause, once finished
        # The suppressed findings by suppression and cause (ids s1, s2, ...), each with its suppression.
        self.suppressed_groups: list[tuple[Group, Suppression]] = []
        self._finished = False

    # Public interface.

    @property
    def findings(self) -> Findings:
        """The findings so far, in the order made (a sequence; most may be on disk: fsaudit.analysis.findings)."""
        return self._findings

    def hidden_by_suppression(self) -> list[int]:
        """How many findings each of config.suppressions hid, in order."""
        return self._findings.hidden_by_suppression()

    def enabled(self, code: str) -> bool:
        return code in self._enabled

    def feed(self, event: dict) -> None:
        self.feed_all((event,))

    def feed_all(self, events) -> None:
        """Each event in order, as feed() would: the loop here, its lookups made once."""
        processes, dispatches, files, counts = self.processes, self._dispatch, self.files, self.counts
        for event in events:
            self.index += 1
            counts.events += 1
            pid = event.get("pid", 0)
            info = processes.get(pid)
            if info is None and pid:
                info = processes[pid] = ProcessInfo(pid)
                self.images.append(info)
                if self.root_pid is None:
                    self.root_pid = pid
            if info is not None:
                info.syscalls += event.get("calls", 1)
            if "injected" in event:
                spec = event.get("injection", "")
                self.injections_fired[spec] = self.injections_fired.get(spec, 0) + 1
            dispatch = dispatches.get(event["syscall"])
            if dispatch is None:
                continue
            hooks, handler, revives = dispatch
            # Hooks and transitions write to the states of the paths the event names: a settled
            # one is a FileState again while they run (but for NAMING_SYSCALLS), and settles
            # again if it still is. A known path is given the state's own string, so that what
            # the model keeps of the event (Calls, names) holds the one it has (model.NAMES).
            revived = revived2 = None
            path = event.get("path")
            if path is not None:
                state = files.get(path)
                if state is not None:
                    if state.path is not path:
                        event["path"] = state.path
                    if revives and state.__class__ is SettledFile:
                        revived = files[path] = state.revive()
            path2 = event.get("path2")     # a symlink names only the link, as path2
            if path2 is not None:
                state = files.get(path2)
                if state is not None:
                    if state.path is not path2:
                        event["path2"] = state.path
                    if revives and state.__class__ is SettledFile:
                        revived2 = files[path2] = state.revive()
            for hook in hooks:
                hook(self, event)
            if handler is not None:
                handler(self, event)
            if revived is not None:
                self.settle(revived)
            if revived2 is not None:
                self.settle(revived2)

    def finish(self, exit_status: dict | int | None = None, cwd: str | None = None) -> None:
        """End of observation. exit_status: the tree's exit ({"code", "signal"} or a code) when known
        from outside; otherwise the root process's exit event decides. cwd: the directory
        fsaudit runs in, whose names the groups' path patterns keep as they are."""
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
        self.groups, hidden = self._findings.finish(cwd)
        self.suppressed_groups = [(group, self.config.suppressions[index]) for group, index in hidden]

    @property
    def tree_exited_ok(self) -> bool:
        exit_ = self.root_exit
        return bool(exit_) and exit_.get("code") == 0 and not exit_.get("signal")

    # For rules and transitions.

    def wake(self, reason: str) -> None:
        """Something a rule's idle hooks wait for is in progress (Rule.idle_syscalls): reason,
        the rule's code or one of its woken_by. Its hooks run on them from the next event on."""
        if reason in self._reasons_seen:    # asked again at every window, truncation, failed sync...
            return
        self._reasons_seen.add(reason)
        woken = {rule.code for rule in self.rules if rule.idle_syscalls and rule.code not in self._awake
                 and (reason == rule.code or reason in rule.woken_by)}
        if woken:
            self._awake |= woken
            self._route()

    def _route(self) -> None:
        hooks: dict[str, list] = {}
        for rule in self.rules:
            idle = () if rule.code in self._awake else rule.idle_syscalls
            for syscall in rule.syscalls:
                if syscall not in idle:
                    hooks.setdefault(syscall, []).append(rule.on_event)
        dispatch = {syscall: (tuple(hooks.get(syscall, ())), HANDLERS.get(syscall), syscall not in NAMING_SYSCALLS)
                    for syscall in {*hooks, *HANDLERS}}
        self._dispatch.clear()      # in place: feed_all's loop holds it
        self._dispatch.update(dispatch)

    def in_scope(self, path: str | None) -> bool:
        """Scope (--path, --exclude, pseudo-filesystems) less the roles left out by default."""
        return self.scope.contains(path) and self.roles.fixed(path) not in self.roles.excluded

    def place(self, state: FileState) -> None:
        """Decide the fixed role and scope of a state at its (new) path."""
        if self.scope.contains(state.path):
            state.fixed_role = role = self.roles.fixed(state.path)
            state.in_scope = role not in self.roles.excluded
        else:
            state.fixed_role, state.in_scope = None, False

    def node(self, path: str, is_dir: bool = False) -> FileState:
        """The FileState of path, made (or revived from a SettledFile) for the caller to write."""
        state = self.files.get(path)
        if state is None:
            state = self.files[path] = FileState(path, is_dir, False)
            self.place(state)
        else:
            if state.__class__ is SettledFile:   # callers write to it; a parent is not named by the event
                state = self.files[path] = state.revive()
            if is_dir:
                state.is_dir = True
        return state

    def settle(self, state: FileState | None) -> None:
        """Compact a file's state when nothing is in progress on it (SettledFile)."""
        if state.__class__ is FileState and state.settled and self.files.get(state.path) is state:
            self.files[state.path] = SettledFile(state)

    def record_move(self, state: FileState | SettledFile) -> None:
        """state has left its path: renamed, moved with its directory, unlinked or renamed over."""
        self.recent_moves.append(state)
        self.move_count += 1

    def has_intent(self, state: FileState) -> bool:
        """Its own barrier, or one on a data file beside it, which spreads to data files only."""
        if state.intent:
            return True
        parent = self.files.get(dirname(state.path))
        return parent is not None and parent.child_intent and state.is_data

    def role_at_end(self, path: str | None) -> str:
        """The role of the file at path (a finding's), as the end of observation sees it."""
        state = self.files.get(path)
        if state is not None and not state.is_dir:
            return state.role
        return self.removed_roles.get(path, "data")

    def image(self, pid: int, at: dict | None = None) -> ProcessInfo | None:
        """The image pid ran when it made the call `at` (default: the one it runs now)."""
        info = self.processes.get(pid)
        return info.at(at.get("t")) if info is not None and at is not None else info

    def process_label(self, pid: int, at: dict | None = None) -> str:
        """How a message names pid: its program image when it made the call `at`."""
        info = self.image(pid, at)
        return f"{info.name if info else 'process'} (pid {pid})"

    def retract(self, code: str, event: dict | None, path: str | None, pid: int | None = None) -> None:
        """Take back one occurrence that report() recorded for the same call (FS101 whose
        window closed in time after all)."""
        if pid is None:
            pid = event.get("pid", 0) if event else (self.root_pid or 0)
        self._findings.retract(code, path, pid)

    def report(self, code: str, event: dict | None, path: str | None, message: str, evidence: list,
               target_path: str | None = None, pid: int | None = None, count: int = 1,
               severity: str | None = None, role: str | None = None) -> None:
        """Record a finding, or count it again: one finding per (rule, path, pid), and
        severity when the rule gives this occurrence a lower one than its own. Its role is
        that of the file it is about (target_path, else path) unless role says."""
        if pid is None:
            pid = event.get("pid", 0) if event else (self.root_pid or 0)
        self._findings.add(code, event, path, message, evidence, target_path, pid, count, severity, role)
