"""The analysis engine: a pure function of the resolved event stream.

It feeds each event to the rules' hooks (fsaudit.analysis.rules), which see the model
(fsaudit.analysis.model) as it was at the time of the call, then applies the event to
the model (fsaudit.analysis.transitions); at the end of observation the rules look once
more. Live tracing and `fsaudit report` replay run the same engine on the same events.
"""

from __future__ import annotations

import os.path

from .config import EngineConfig
from .findings import Finding, Findings
from .model import Counts, FileState, ProcessInfo, SettledFile
from .roles import Roles
from .rules import RULES
from .scope import Scope
from .transitions import HANDLERS


class Engine:
    def __init__(self, config: EngineConfig | None = None, *, root_pid: int | None = None,
                 header: dict | None = None) -> None:
        """header: the event log's, whose `mounts` and `cache_home` decide roles (docs/events.md)."""
        config = self.config = config or EngineConfig()
        header = header or {}
        self.rules = [rule for rule in RULES if rule.code not in config.disabled]
        self._enabled = frozenset(rule.code for rule in self.rules)
        self._hooks: dict[str, list] = {}
        for rule in self.rules:
            for syscall in rule.syscalls:
                self._hooks.setdefault(syscall, []).append(rule.on_event)
        self.scope = Scope(config.include, config.exclude)
        self.roles = Roles(config, header.get("mounts"), header.get("cache_home"))
        self.root_pid = root_pid
        # The model, written by the transitions.
        self.files: dict[str, FileState | SettledFile] = {}
        self.processes: dict[int, ProcessInfo] = {}
        self.counts = Counts()
        self.injections_fired: dict[str, int] = {}     # --inject spec -> calls failed on purpose
        self.root_exit: dict | None = None
        self.dirty_since_send: set[FileState] = set()   # became dirty after the latest send (FS106)
        self.gone: set[str] = set()                     # paths known not to exist (unlinked, renamed away)
        self.removed_roles: dict[str, str] = {}         # unlinked path -> its file's role, when not data
        self.not_files: set[str] = set()                # names of sockets, FIFOs, devices: never files
        self.pending_dirs: set[FileState] = set()       # directories with pending entries
        self.index = 0                                  # the current event's position in the stream
        self._findings = Findings(config, self.processes, self.role_at_end)
        self._pinned: set[FileState] = set()            # shown by the live view: never settled
        self._finished = False

    # Public interface.

    @property
    def findings(self) -> list[Finding]:
        return list(self._findings)

    def hidden_by_suppression(self) -> list[int]:
        """How many findings each of config.suppressions hid, in order."""
        return self._findings.hidden_by_suppression()

    def enabled(self, code: str) -> bool:
        return code in self._enabled

    def feed(self, event: dict) -> None:
        self.index += 1
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
        # Hooks and transitions write to the states of the paths the event names: a settled
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
        handler = HANDLERS.get(syscall)
        if handler is not None:
            handler(self, event)
        for state in revived:
            self.settle(state)

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
        self._findings.settle_roles()
        for finding in self._findings:
            if finding.runtime is None:
                self._findings.apply_runtime(finding)

    @property
    def tree_exited_ok(self) -> bool:
        exit_ = self.root_exit
        return bool(exit_) and exit_.get("code") == 0 and not exit_.get("signal")

    # For rules and transitions.

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
        if (state.__class__ is FileState and state.settled and state not in self._pinned
                and self.files.get(state.path) is state):
            self.files[state.path] = SettledFile(state)
            self.dirty_since_send.discard(state)   # a sync() cleans without taking it out

    def pin(self, states: list) -> list[FileState]:
        """The live view's rows as FileStates that stay the same objects (never settled)
        until the next pin, so that a row follows its file through a rename or an unlink."""
        pinned = [self.node(state.path) if state.__class__ is SettledFile else state for state in states]
        self._pinned = set(pinned)
        return pinned

    def has_intent(self, state: FileState) -> bool:
        """Its own barrier, or one on a data file beside it, which spreads to data files only."""
        if state.intent:
            return True
        parent = self.files.get(os.path.dirname(state.path))
        return parent is not None and parent.child_intent and state.is_data

    def role_at_end(self, path: str | None) -> str:
        """The role of the file at path (a finding's), as the end of observation sees it."""
        state = self.files.get(path)
        if state is not None and not state.is_dir:
            return state.role
        return self.removed_roles.get(path, "data")

    def process_label(self, pid: int) -> str:
        info = self.processes.get(pid)
        return f"{info.name if info else 'process'} (pid {pid})"

    def report(self, code: str, event: dict | None, path: str | None, message: str, evidence: list,
               target_path: str | None = None, pid: int | None = None, count: int = 1,
               role: str | None = None) -> None:
        """Record a finding, or count it again: one finding per (rule, path, pid). Its role
        is that of the file it is about (target_path, else path) unless role says."""
        if pid is None:
            pid = event.get("pid", 0) if event else (self.root_pid or 0)
        self._findings.add(code, event, path, message, evidence, target_path, pid, count, role)
