"""Findings: one per (rule, path, pid), counted again when it recurs; suppressed by config
(and counted per suppression), with the configured severity and the fix in the runtime
of the process that made the call."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .config import EngineConfig
from .fixes import fix_for, notes_for
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


class Findings:
    def __init__(self, config: EngineConfig, processes: dict) -> None:
        self._suppressions = [(s.rule, s.path) for s in config.suppressions]
        self._severity = dict(config.severity)
        self._processes = processes     # the engine's: a finding's runtime is its process's
        self._found: dict[tuple, Finding] = {}
        self._hidden: dict[tuple, int] = {}     # a suppressed finding's key -> its suppression's index

    def __iter__(self):
        return iter(self._found.values())

    def __len__(self) -> int:
        return len(self._found)

    def hidden_by_suppression(self) -> list[int]:
        """How many findings each of config.suppressions hid, in order."""
        counts = Counter(self._hidden.values())
        return [counts[index] for index in range(len(self._suppressions))]

    def add(self, code: str, event: dict | None, path: str | None, message: str, evidence: list,
            target_path: str | None, pid: int, count: int, severity: str | None = None) -> None:
        """severity: this occurrence's, where the rule says when it is lower than its own
        (FS101's window closed by a later sync); kept apart from the rule's own."""
        key = (code, path, pid) if severity is None else (code, path, pid, severity)
        found = self._found.get(key)
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
        finding = self._found[key] = Finding(
            rule=code, name=rule.name, severity=severity or self._severity.get(code, rule.severity),
            pid=pid, tid=event.get("tid", pid) if event else pid, path=path, target_path=target_path,
            message=message, evidence=_evidence(evidence), fix=rule.fix,
            stack=_stack(event, evidence), count=count)
        self.apply_runtime(finding)

    def apply_runtime(self, finding: Finding) -> None:
        """The runtime of the finding's process as it is now (a later exec may change
        it; Engine.finish fills in those whose runtime was announced after the finding)."""
        info = self._processes.get(finding.pid)
        runtime = info.runtime if info else None
        if runtime is None:
            return
        finding.runtime = runtime["name"]
        finding.fix = fix_for(finding.rule, runtime, RULES_BY_CODE[finding.rule].fix)
        finding.notes = notes_for(finding.rule, runtime)
