"""Findings: one per (rule, path, pid), counted again when it recurs; suppressed by config
(kept aside with their suppression, which SARIF shows as suppressed results, and counted
per suppression), with the configured severity, at most info for a file that is not data
(its role), and the fix in the runtime of the process that made the call.

Memory is bounded by groups, not by findings: the first IN_MEMORY findings are kept
whole; each one after them is written to a private spill file (unlinked, 0600) at
once, and only its key, its count and where it lies stay in memory. Reading a
finding back rebuilds it, with what the end of observation decided (its file's final
role, its process's runtime, its group) applied as it is read."""

from __future__ import annotations

import marshal
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

from .config import EngineConfig
from .fixes import fix_for, notes_for
from .globs import as_glob
from .grouping import Group, group_findings, report_order
from .model import Call
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


FIELDS = tuple(f.name for f in fields(Finding))
# Findings kept whole in memory: a run with fewer never writes a spill file. About 1 KB
# each (their evidence, messages and stacks); one spilled about 240 bytes (its key, number and counts).
IN_MEMORY = 1000


class Spill:
    """Findings written away as they are made: marshal records in an unlinked file in
    $TMPDIR (tempfile: 0600, gone when closed or when fsaudit dies), read back by number."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="fsaudit-findings-")
        self._ends = array("q", [0])     # record n lies between _ends[n] and _ends[n + 1]

    def __len__(self) -> int:
        return len(self._ends) - 1

    def append(self, record: tuple) -> None:
        data = marshal.dumps(record)
        self._file.seek(self._ends[-1])
        self._file.write(data)
        self._ends.append(self._ends[-1] + len(data))

    def __getitem__(self, number: int) -> tuple:
        start = self._ends[number]
        self._file.seek(start)
        return marshal.loads(self._file.read(self._ends[number + 1] - start))

    def close(self) -> None:
        self._file.close()


EVIDENCE_KEYS = ("t", "pid", "tid", "syscall", "fd", "ret", "calls", "bytes", "note")   # note: a rule's word on it


def _evidence(events: list) -> list[dict]:
    """The few events that make a finding true, once each, as small dicts."""
    out, seen = [], set()
    for event in events:
        if event is not None and id(event) not in seen:
            seen.add(id(event))
            out.append(event.pick(EVIDENCE_KEYS) if isinstance(event, Call) else
                       {key: event[key] for key in EVIDENCE_KEYS if key in event})
    return out[:4]


def _stack(event: dict | None, evidence: list) -> list | None:
    """--stacks: where in the code the triggering call was made, else the
    latest evidence event that has a stack (an exit has none; its last write has)."""
    if event is not None and "stack" in event:
        return event["stack"]
    return next((e["stack"] for e in reversed(evidence) if e is not None and "stack" in e), None)


class Numbers:
    """The numbers of findings by key, (rule, path, pid) or (rule, path, pid, severity), held
    as (rule, pid[, severity]) -> path -> number: a tuple per kind of finding rather than
    one per finding (64 bytes each; 125 000 findings on unique paths: 8 MB)."""

    __slots__ = ("_by_kind", "_len")

    def __init__(self) -> None:
        self._by_kind: dict[tuple, dict] = {}
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def get(self, kind: tuple, path: str | None) -> int | None:
        paths = self._by_kind.get(kind)
        return None if paths is None else paths.get(path)

    def add(self, kind: tuple, path: str | None, number: int) -> None:
        self._by_kind.setdefault(kind, {})[path] = number
        self._len += 1

    def remove(self, kind: tuple, path: str | None) -> None:
        paths = self._by_kind[kind]
        del paths[path]
        if not paths:
            del self._by_kind[kind]
        self._len -= 1

    def numbers(self) -> list[int]:
        """In the order the findings were made (numbers grow with it)."""
        return sorted(number for paths in self._by_kind.values() for number in paths.values())


class Findings:
    """The findings so far, in the order made: a sequence (iterate it, take its len, index
    it) of Finding, each rebuilt from the spill when it is not kept whole."""

    def __init__(self, config: EngineConfig, processes: dict, role_at_end) -> None:
        """role_at_end(path): the role of the file at path (Engine.role_at_end)."""
        self._suppressions = [(s.rule, as_glob(s.path)) for s in config.suppressions]
        self._severity = dict(config.severity)
        self._processes = processes     # the engine's: a finding's runtime is its process's
        self._role_at_end = role_at_end
        # Each finding has a number, its place in the order made; its key leads to it while
        # its count is not 0 (a retracted finding's number is not reused).
        self._found = Numbers()                 # key -> number: the findings the report lists
        self._hidden = Numbers()                # key -> number: those a suppression hid
        self._listed: list[int] | None = None   # _found's numbers in order, until one is added or removed
        self.removed = 0                        # findings retracted to none so far (their places shift)
        self._counts = array("q")               # number -> its count
        self._hidden_by = array("i")            # number -> the index of the suppression that hid it, or -1
        self._kept: dict[int, Finding] = {}     # number -> the finding, for those kept whole
        self._given_severity: dict[int, str] = {}   # number (kept) -> the lower severity its rule gave
        self._role_given: set[int] = set()      # numbers (kept) of findings whose rule said their role
        self._spill: Spill | None = None
        self._first_spilled = 0                 # the number of the spill's first record
        self._spill_failed = False              # then every later finding is kept whole
        self._finished = False                  # settled: roles and runtimes as the end saw them
        self._grouped = False
        self._group_ids: list[str] = []         # once finished: the groups' ids, and
        self._group_of = array("i")             # number -> the index of its group's id
        self._order: list[int] = []             # the numbers of the findings listed, in the report's order
        self._hidden_order: list[int] = []      # those of the hidden ones

    def _numbers(self) -> list[int]:
        if self._listed is None:
            self._listed = self._found.numbers()
        return self._listed

    def __iter__(self) -> Iterator[Finding]:
        return map(self._finding, self._numbers())

    def __len__(self) -> int:
        return len(self._found)

    def __getitem__(self, index):
        numbers = self._numbers()[index]
        return [self._finding(n) for n in numbers] if isinstance(index, slice) else self._finding(numbers)

    def counts(self) -> list[int]:
        """Each finding's count, in order, without reading any back (a reader that follows
        them, the dashboard, reads only those new or counted again)."""
        return [self._counts[number] for number in self._numbers()]

    def __eq__(self, other) -> bool:
        if isinstance(other, (Findings, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return repr(list(self))

    def ordered(self, hidden: bool = False) -> Iterator[Finding]:
        """Once finished: the findings the report lists (hidden: those suppressions hid),
        most severe first, then by rule, path and pid."""
        return map(self._finding, self._hidden_order if hidden else self._order)

    def hidden_by_suppression(self) -> list[int]:
        """How many findings each of config.suppressions hid, in order."""
        counts = Counter(self._hidden_by[number] for number in self._hidden.numbers())
        return [counts[index] for index in range(len(self._suppressions))]

    def add(self, code: str, event: dict | None, path: str | None, message: str, evidence: list,
            target_path: str | None, pid: int, count: int, severity: str | None = None,
            role: str | None = None) -> None:
        """severity: this occurrence's, where the rule says when it is lower than its own
        (FS101's window closed by a later sync); kept apart from the rule's own. role: the
        file's, where the rule knows it better than the path; a role but data caps either at info."""
        kind = (code, pid) if severity is None else (code, pid, severity)
        number = self._found.get(kind, path)
        if number is None:
            number = self._hidden.get(kind, path)
        if number is not None:
            self._counts[number] += count
            kept = self._kept.get(number)
            if kept is not None:
                kept.count += count
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
        self._apply_role(finding, role or self._role_of(target_path or path), severity)
        self.apply_runtime(finding)     # before it is stored: a spilled finding is not changed after
        number = len(self._counts)
        self._counts.append(count)
        self._hidden_by.append(-1 if suppression is None else suppression)
        if suppression is None:
            self._found.add(kind, path, number)
            self._listed = None
        else:
            self._hidden.add(kind, path, number)
        self._store(number, finding, severity, role is not None)

    def _store(self, number: int, finding: Finding, given_severity: str | None, role_given: bool) -> None:
        if number >= IN_MEMORY and not self._spill_failed:
            try:
                if self._spill is None:
                    self._spill, self._first_spilled = Spill(), number
                self._spill.append((*(getattr(finding, name) for name in FIELDS), given_severity, role_given))
                return
            except OSError:     # no room for it: this and every later finding stay in memory
                self._spill_failed = True
        self._kept[number] = finding
        if given_severity is not None:
            self._given_severity[number] = given_severity
        if role_given:
            self._role_given.add(number)

    def _finding(self, number: int) -> Finding:
        """The finding numbered so: the one kept, else rebuilt from its record with its count
        and, once finished, what the end of observation decided."""
        kept = self._kept.get(number)
        if kept is not None:
            return kept
        *values, given_severity, role_given = self._spill[number - self._first_spilled]
        finding = Finding(*values)
        finding.count = self._counts[number]
        if self._finished:
            self._settle(finding, given_severity, role_given)
        if self._grouped:
            finding.group = self._group_ids[self._group_of[number]]
        return finding

    def retract(self, code: str, path: str | None, pid: int) -> None:
        """One occurrence of the finding at (code, path, pid) is taken back."""
        kind = (code, pid)
        for found in (self._found, self._hidden):
            number = found.get(kind, path)
            if number is None:
                continue
            self._counts[number] -= 1
            kept = self._kept.get(number)
            if kept is not None:
                kept.count -= 1
            if not self._counts[number]:
                found.remove(kind, path)
                self._listed = None
                self.removed += 1
                self._kept.pop(number, None)
                self._given_severity.pop(number, None)
                self._role_given.discard(number)
            return

    def _role_of(self, path: str | None) -> str | None:
        return self._role_at_end(path) if path else None

    def _apply_role(self, finding: Finding, role: str | None, given_severity: str | None) -> str:
        """Give the finding its file's role; a file that is not data is reported at most as
        info. Returns the severity it would have had."""
        finding.role = role
        severity = given_severity or self._severity.get(finding.rule, RULES_BY_CODE[finding.rule].severity)
        finding.severity = severity if role in (None, "data") else "info"
        return severity

    def _settle(self, finding: Finding, given_severity: str | None, role_given: bool) -> None:
        """At the end of observation: the finding's role as its file's final one (a lock
        file can be written later, a file created and removed is temp only once removed),
        the message saying why it is info when its role made it so; and its process's
        runtime, when it was announced after the finding."""
        role = finding.role if role_given else self._role_of(finding.target_path or finding.path)
        severity = self._apply_role(finding, role, given_severity)
        if severity != finding.severity:
            finding.message += f" (info, not {severity}: a {role} file, not data)"
        if finding.runtime is None:
            self.apply_runtime(finding)

    def finish(self, cwd: str | None) -> tuple[list[Group], list[tuple[Group, int]]]:
        """End of observation: settle every finding, group them (ids g1, g2, ...), and those
        each suppression hid (s1, s2, ... across suppressions, each group with its
        suppression's index); fix the order the report lists them in."""
        for number, finding in self._kept.items():
            self._settle(finding, self._given_severity.get(number), number in self._role_given)
        self._finished = True
        self._group_of = array("i", bytes(4 * len(self._counts)))
        listed = array("q", self._found.numbers())
        groups = self._group(listed, cwd, "g", 0)
        hidden: list[tuple[Group, int]] = []
        for index in range(len(self._suppressions)):
            numbers = array("q", (n for n in self._hidden.numbers() if self._hidden_by[n] == index))
            hidden += [(group, index) for group in self._group(numbers, cwd, "s", len(hidden))]
        self._grouped = True
        self._order = self._sorted(listed)
        self._hidden_order = self._sorted(self._hidden.numbers())
        return groups, hidden

    def _group(self, numbers: array, cwd: str | None, prefix: str, before: int) -> list[Group]:
        """Group the findings numbered so, their groups' ids prefix + a number after `before`."""
        grouped, membership = group_findings(_Reader(self._finding, numbers), cwd)
        base = len(self._group_ids)
        for number, group in enumerate(grouped, before + 1):
            group.id = f"{prefix}{number}"
            self._group_ids.append(group.id)
        for number, member_of in zip(numbers, membership):
            self._group_of[number] = base + member_of
            kept = self._kept.get(number)
            if kept is not None:
                kept.group = self._group_ids[base + member_of]
        return grouped

    def _sorted(self, numbers) -> list[int]:
        return sorted(numbers, key=lambda number: report_order(self._finding(number)))

    def apply_runtime(self, finding: Finding) -> None:
        """The runtime of the image that made the finding's call (finding.exe), as known
        now: a later exec changes the process's image, not the finding's; finish() fills
        in those whose runtime was announced after the finding."""
        info = self._processes.get(finding.pid)
        while info is not None and info.exe != finding.exe:
            info = info.previous
        runtime = info.runtime if info else None
        if runtime is None:
            return
        finding.runtime = runtime["name"]
        finding.fix = fix_for(finding.rule, runtime, RULES_BY_CODE[finding.rule].fix)
        finding.notes = notes_for(finding.rule, runtime)


class _Reader:
    """The findings numbered so, read again each time it is iterated (grouping reads twice)."""

    def __init__(self, finding, numbers) -> None:
        self._finding, self._numbers = finding, numbers

    def __iter__(self) -> Iterator[Finding]:
        return map(self._finding, self._numbers)
