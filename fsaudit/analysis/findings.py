"""Findings: one per (rule, path, pid), counted again when it recurs; suppressed by config
(kept aside with their suppression, which SARIF shows as suppressed results, and counted
per suppression), with the configured severity, at most info for a file that is not data
(its role), and the fix in the runtime of the process that made the call."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .config import EngineConfig
from .fixes import fix_for, notes_for
from .globs import as_glob
from .rules import RULES_BY_CODE


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
    role: str | None = None                     # of the file it is about (fsaudit.analysis.roles), if any
    exe: str | None = None      # the process's program image when the finding was made (grouping)
    group: str | None = None    # its group's id, once observation ended (fsaudit.analysis.grouping)


EVIDENCE_KEYS = ("t", "pid", "tid", "syscall", "fd", "ret", "calls", "bytes", "note")   # note: a rule's word on it


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


class Findings:
    def __init__(self, config: EngineConfig, processes: dict, role_at_end) -> None:
        """role_at_end(path): the role of the file at path (Engine.role_at_end)."""
        self._suppressions = [(s.rule, as_glob(s.path)) for s in config.suppressions]
        self._severity = dict(config.severity)
        self._processes = processes     # the engine's: a finding's runtime is its process's
        self._found: dict[tuple, Finding] = {}
        # A suppressed finding's key -> the finding and its suppression's index.
        self._hidden: dict[tuple, tuple[Finding, int]] = {}
        self._role_at_end = role_at_end
        self._role_given: set[int] = set()      # ids of findings whose rule said their role
        self._given_severity: dict[int, str] = {}   # id of a finding -> the lower severity its rule gave

    def __iter__(self):
        return iter(self._found.values())

    def __len__(self) -> int:
        return len(self._found)

    def hidden_by_suppression(self) -> list[int]:
        """How many findings each of config.suppressions hid, in order."""
        counts = Counter(index for _finding, index in self._hidden.values())
        return [counts[index] for index in range(len(self._suppressions))]

    def suppressed(self) -> list[tuple[Finding, int]]:
        """The findings suppressions hid, each with its suppression's index in config.suppressions."""
        return list(self._hidden.values())

    def add(self, code: str, event: dict | None, path: str | None, message: str, evidence: list,
            target_path: str | None, pid: int, count: int, severity: str | None = None,
            role: str | None = None) -> None:
        """severity: this occurrence's, where the rule says when it is lower than its own
        (FS101's window closed by a later sync); kept apart from the rule's own. role: the
        file's, where the rule knows it better than the path; a role but data caps either at info."""
        key = (code, path, pid) if severity is None else (code, path, pid, severity)
        found = self._found.get(key)
        if found is not None:
            found.count += count
            return
        hidden = self._hidden.get(key)
        if hidden is not None:
            hidden[0].count += count
            return
        suppression = next((index for index, (rule, glob) in enumerate(self._suppressions)
                            if rule == code and glob.match(path)), None) if path else None
        rule = RULES_BY_CODE[code]
        info = self._processes.get(pid)
        if info is not None and event is not None:
            info = info.at(event.get("t"))      # the image that made the call, not the one running now
        finding = Finding(
            rule=code, name=rule.name, severity=severity or self._severity.get(code, rule.severity),
            pid=pid, tid=event.get("tid", pid) if event else pid, path=path, target_path=target_path,
            message=message, evidence=_evidence(evidence), fix=rule.fix,
            stack=_stack(event, evidence), count=count, exe=info.exe if info else None)
        if severity is not None:
            self._given_severity[id(finding)] = severity
        if role is not None:
            self._role_given.add(id(finding))
        self._apply_role(finding, role or self._role_of(target_path or path))
        if suppression is None:
            self._found[key] = finding
        else:
            self._hidden[key] = (finding, suppression)
        self.apply_runtime(finding)

    def retract(self, code: str, path: str | None, pid: int) -> None:
        """One occurrence of the finding at (code, path, pid) is taken back."""
        key = (code, path, pid)
        found = self._found.get(key)
        if found is not None:
            found.count -= 1
            if not found.count:
                self._forget(self._found.pop(key))
            return
        hidden = self._hidden.get(key)
        if hidden is not None:
            hidden[0].count -= 1
            if not hidden[0].count:
                self._forget(self._hidden.pop(key)[0])

    def _forget(self, finding: Finding) -> None:
        # Keyed by id(): a later finding may reuse a removed one's.
        self._given_severity.pop(id(finding), None)
        self._role_given.discard(id(finding))

    def _role_of(self, path: str | None) -> str | None:
        return self._role_at_end(path) if path else None

    def _apply_role(self, finding: Finding, role: str | None) -> str:
        """Give the finding its file's role; a file that is not data is reported at most as
        info. Returns the severity it would have had."""
        finding.role = role
        severity = self._given_severity.get(id(finding)) or self._severity.get(
            finding.rule, RULES_BY_CODE[finding.rule].severity)
        finding.severity = severity if role in (None, "data") else "info"
        return severity

    def settle_roles(self) -> None:
        """At the end of observation: each finding's role as its file's final one (a lock
        file can be written later, a file created and removed is temp only once removed),
        and the message says why a finding is info when its role made it so."""
        for finding in [*self._found.values(), *(finding for finding, _index in self._hidden.values())]:
            role = finding.role if id(finding) in self._role_given else self._role_of(
                finding.target_path or finding.path)
            severity = self._apply_role(finding, role)
            if severity != finding.severity:
                finding.message += f" (info, not {severity}: a {role} file, not data)"

    def apply_runtime(self, finding: Finding) -> None:
        """The runtime of the image that made the finding's call (finding.exe), as known
        now: a later exec changes the process's image, not the finding's; Engine.finish
        fills in those whose runtime was announced after the finding."""
        info = self._processes.get(finding.pid)
        while info is not None and info.exe != finding.exe:
            info = info.previous
        runtime = info.runtime if info else None
        if runtime is None:
            return
        finding.runtime = runtime["name"]
        finding.fix = fix_for(finding.rule, runtime, RULES_BY_CODE[finding.rule].fix)
        finding.notes = notes_for(finding.rule, runtime)
