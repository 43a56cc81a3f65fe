"""Real programs traced by the real tracer, and their ground truth as data.

A `Case` is one traced session of a program nobody here wrote. Its `truths`
say, for each finding fsaudit could make about it, whether that finding is
TRUE (a real durability gap worth acting on), NOISE (true, but not worth a
developer's time: logs, caches, locks, stdio) or FALSE (the program does the
right thing, or the finding blames the wrong process), and what fsaudit must
therefore print. The test modules (tests/real/test_*.py) assert those
expectations; bench/accuracy.py classifies every finding with the same data
and prints the issue #15 table. Nothing here imports fsaudit: it reads what
`fsaudit run` wrote, the report and the event log.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

FSAUDIT = [sys.executable, "-m", "fsaudit"]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
# The traced programs get a fresh machine's environment, not this shell's: the system's PATH
# (no ~/.cargo/bin, no pyenv shims: what they run is what Debian installed), no PIP_* or
# PYTHON* settings; a case adds its own.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENV = {"PATH": SYSTEM_PATH, "HOME": "/root", "LANG": "C.UTF-8"}

TRUE, NOISE, FALSE = "true", "noise", "false"
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
# docs/rules.md (the catalogue): the severity a finding of each rule is raised at.
CATALOGUE_SEVERITY = {"FS101": "error", "FS102": "warning", "FS103": "warning", "FS104": "warning",
                      "FS105": "info", "FS106": "warning", "FS107": "warning"}
# The bar for a summary that fits on one screen.
SUMMARY_LINES = 40


@dataclass(frozen=True)
class Truth:
    """What is true of the findings of one rule on the files matching `path`.

    path: an fnmatch glob (`*` crosses `/`) matched against a finding's `path`
    and `target_path`, relative to the case's work directory when under it.
    by: a regular expression the image that made the triggering call must
    match (its basename or, for a script, its interpreter's; taken from the
    event log, not from the message); a TRUE finding's message must name it.
    only_at: the severities this verdict applies to (empty: all).
    expect: "present" (TRUE default: at least at the catalogue severity),
    "absent" (FALSE default), "info" (never above info), or None (NOISE
    default: no assertion).
    defect / name_defect: why the expectation / the message's process name
    fails on today's fsaudit (the test is then xfail strict: it must be
    removed when the defect is fixed); name_defect defaults to the case's
    naming_defect.
    """

    rule: str           # a code, or an fnmatch pattern of codes ("FS10[45]")
    path: str
    verdict: str
    why: str
    by: str | None = None
    only_at: tuple[str, ...] = ()
    expect: str | None = "default"
    defect: str | None = None
    name_defect: str | None = None

    @property
    def expectation(self) -> str | None:
        if self.expect != "default":
            return self.expect
        return {TRUE: "present", FALSE: "absent", NOISE: None}[self.verdict]

    def label(self) -> str:
        who = f" by {self.by}" if self.by else ""
        at = f" at {'/'.join(self.only_at)}" if self.only_at else ""
        return f"{self.rule} {self.path}{who}{at}"


@dataclass
class Case:
    """One traced session: what runs, and what is true of what it does."""

    name: str
    program: str                                   # for the table
    needs: tuple[str, ...]                         # commands that must be installed
    command: Callable[[Path], list[str]]           # argv, given the work directory
    truths: list[Truth]
    setup: Callable[[Path], None] | None = None    # untraced preparation in the work directory
    teardown: Callable[[Path], None] | None = None  # stops what the command may have left running
    owner: str | None = None                       # the work directory belongs to this user
    stdout: str | None = None                      # the command's stdout goes to this file (a redirect)
    env: dict[str, str] = field(default_factory=dict)   # "{work}" stands for the work directory
    # Case-level expectations that fail on today's fsaudit, and why (None: they hold).
    naming_defect: str | None = None       # every message names the image that made the call
    argv_defect: str | None = None         # each processes[] entry has its own exec's argv
    grouping_defect: str | None = None     # no message names one file for several
    summary_defect: str | None = None      # the summary is under SUMMARY_LINES lines


class Traced:
    """What `fsaudit run` wrote for one case: report, event log, summary."""

    def __init__(self, case: Case, work: Path, seconds: float = 0.0) -> None:
        self.case, self.work, self.seconds = case, work, seconds
        self.report = json.loads((work / "fsaudit-report.json").read_text())
        with open(work / "fsaudit-events.jsonl", encoding="ascii") as f:
            lines = f.read().splitlines()
        self.events = [json.loads(line) for line in lines[1:]]
        if self.events and "trailer" in self.events[-1]:
            self.events.pop()
        self.summary = (work / "fsaudit-summary.txt").read_text()
        self._images = ImageTimeline(self.events)
        self._calls = {(e["t"], e.get("tid"), e["syscall"]): e for e in self.events}

    @property
    def findings(self) -> list[dict]:
        return self.report["findings"]

    def rel(self, path: str | None) -> str | None:
        if path is None:
            return None
        work = str(self.work)
        if path == work:
            return "."
        return path[len(work) + 1:] if path.startswith(work + "/") else path

    def image(self, finding: dict) -> str:
        """The image (exec'd path) of the process that made the finding's triggering call, when it made it."""
        mine = [e for e in finding.get("evidence", ()) if e.get("pid") == finding["pid"]]
        t = max((e["t"] for e in mine), default=None)
        return self._images.at(finding["pid"], t)

    def accepted_names(self, finding: dict) -> frozenset[str]:
        return self._images.names(self.image(finding))

    def named_files(self, finding: dict) -> list[str]:
        """The files a grouped FS102/FS104 finding stands for: the new name of each rename/link, the name
        of each removal, read from the event log by its evidence calls (rules.md: such a finding's path is
        the directory and target_path is set only when it names one file)."""
        names = []
        for e in finding.get("evidence") or ():
            call = self._calls.get((e.get("t"), e.get("tid"), e.get("syscall")))
            if call is not None:
                name = call.get("path2") if call["syscall"] in GROUPED_SYSCALLS["FS102"] else call.get("path")
                if name:
                    names.append(name)
        return names

    def matches(self, truth: Truth, finding: dict, *, any_severity: bool = False) -> bool:
        if not fnmatch.fnmatchcase(finding["rule"], truth.rule):
            return False
        if truth.only_at and not any_severity and finding["severity"] not in truth.only_at:
            return False
        paths = [self.rel(finding.get("path")), self.rel(finding.get("target_path"))]
        if finding["rule"] in GROUPED_SYSCALLS:
            # A truth about files (".git/HEAD") still judges the finding that now names them all under
            # their directory's path: it matches when any of its files does.
            paths += [self.rel(name) for name in self.named_files(finding)]
        if not any(p is not None and fnmatch.fnmatchcase(p, truth.path) for p in paths):
            return False
        return truth.by is None or any(re.fullmatch(truth.by, name) for name in self.accepted_names(finding))

    def verdict(self, finding: dict) -> str | None:
        """The ground truth's verdict on one finding (None: the ground truth does not cover it)."""
        for truth in self.case.truths:
            if self.matches(truth, finding):
                return truth.verdict
        return None


class ImageTimeline:
    """Which image each process ran at each moment, from exec and fork events."""

    def __init__(self, events: list[dict]) -> None:
        self.execs: dict[int, list[tuple[float, str]]] = {}
        self.parents: dict[int, tuple[int, float]] = {}
        for e in events:
            if e["syscall"] == "exec" and e.get("path"):
                self.execs.setdefault(e["pid"], []).append((e["t"], e["path"]))
            elif e["syscall"] == "fork" and e.get("child"):
                self.parents[e["child"]] = (e["pid"], e["t"])

    def at(self, pid: int, t: float | None) -> str:
        for when, path in reversed(self.execs.get(pid, ())):
            if t is None or when <= t:
                return path
        parent = self.parents.get(pid)
        if parent is None:
            return "?"
        return self.at(parent[0], parent[1])

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def names(image: str) -> frozenset[str]:
        """The names a message may give an image: its basename, and for a script its interpreter's."""
        names = {os.path.basename(image)}
        try:
            with open(image, "rb") as f:
                first = f.readline(200)
        except OSError:
            return frozenset(names)
        if first.startswith(b"#!"):
            words = first[2:].split()
            if words:
                interpreter = os.path.basename(os.fsdecode(words[0]))
                names.add(os.fsdecode(words[1]) if interpreter == "env" and len(words) > 1 else interpreter)
        return frozenset(names)


def message_names(message: str, names: frozenset[str], pid: int) -> bool:
    return any(f"{name} (pid {pid})" in message for name in names)


def misnamed(traced: Traced) -> list[str]:
    """Findings whose message does not name the image that made the triggering call."""
    wrong = []
    for f in traced.findings:
        names = traced.accepted_names(f)
        if not message_names(f["message"], names, f["pid"]):
            wrong.append(f"{f['rule']} {traced.rel(f.get('path'))}: made by {'/'.join(sorted(names))}, "
                         f"message says {f['message'].split(' (pid')[0]!r}")
    return wrong


def stale_argv(traced: Traced) -> list[str]:
    """Entries of the report's processes[] whose argv is not their own exec's (empty, or another image's)."""
    wrong = []
    for p in traced.report.get("processes", ()):
        if not p.get("exe"):
            continue
        names = ImageTimeline.names(p["exe"])
        if not any(os.path.basename(arg) in names for arg in (p.get("argv") or [])[:2]):
            wrong.append(f"pid {p['pid']} ran {p['exe']}, argv {p.get('argv')}")
    return wrong


GROUPED_SYSCALLS = {"FS102": {"rename", "renameat", "renameat2", "link", "linkat"},
                    "FS104": {"unlink", "unlinkat", "rmdir"}}


def misgrouped(traced: Traced) -> list[str]:
    """Findings that stand for several files but whose message names only one of them."""
    wrong = []
    for f in traced.findings:
        calls = GROUPED_SYSCALLS.get(f["rule"])
        evidence = f.get("evidence") or []
        if not calls or len(evidence) < 2:
            continue
        first, last = min(e["t"] for e in evidence), max(e["t"] for e in evidence)
        names = sorted({e[key] for e in traced.events
                        if e["syscall"] in calls and e.get("pid") == f["pid"] and first <= e["t"] <= last
                        and isinstance(e.get("ret"), int) and e["ret"] >= 0
                        for key in ("path", "path2") if e.get(key) and os.path.dirname(e[key]) == f.get("path")})
        if len(names) > 1 and sum(name in f["message"] for name in names) == 1:
            wrong.append(f"{f['rule']}: {f['message']!r} stands for {', '.join(traced.rel(n) for n in names)}")
    return wrong


def unclassified(traced: Traced) -> list[str]:
    return [f"{f['rule']} {f['severity']} {traced.rel(f.get('path'))} -> {traced.rel(f.get('target_path'))} "
            f"by {os.path.basename(traced.image(f))}"
            for f in traced.findings if traced.verdict(f) is None]


def check_truth(traced: Traced, truth: Truth) -> None:
    """Assert the expectation of one ground-truth line."""
    matching = [f for f in traced.findings if traced.matches(truth, f)]
    shown = "; ".join(f"{f['severity']} {f['message']}" for f in matching) or "none"
    expectation = truth.expectation
    if expectation == "present":
        floor = SEVERITY_RANK[CATALOGUE_SEVERITY[truth.rule]]
        assert any(SEVERITY_RANK[f["severity"]] >= floor for f in matching), (
            f"{truth.label()} is a real gap ({truth.why}) and must be reported at "
            f"{CATALOGUE_SEVERITY[truth.rule]} or above; found: {shown}")
    elif expectation == "absent":
        assert not matching, f"{truth.label()} is false ({truth.why}); found: {shown}"
    elif expectation == "info":
        loud = [f for f in traced.findings if traced.matches(truth, f, any_severity=True) and f["severity"] != "info"]
        assert not loud, f"{truth.label()} must not be above info ({truth.why}); found: " + "; ".join(
            f"{f['severity']} {f['message']}" for f in loud)


def check_truth_names(traced: Traced, truth: Truth) -> None:
    """A TRUE finding's message names the program that made the call."""
    matching = [f for f in traced.findings if traced.matches(truth, f)]
    assert matching, f"{truth.label()}: no finding to check the name of"
    wrong = [f["message"] for f in matching if not message_names(f["message"], traced.accepted_names(f), f["pid"])]
    assert not wrong, f"the message must name {truth.by}: " + "; ".join(wrong)


@dataclass(frozen=True)
class Check:
    """One assertion about one case, for pytest.mark.parametrize."""

    case: str
    what: str
    run: Callable[[Traced], None]
    defect: str | None

    def __str__(self) -> str:
        return f"{self.case}: {self.what}"


def checks(cases: list[Case]) -> list[Check]:
    """Every assertion the ground truth of these cases makes."""
    out = []
    for case in cases:
        for truth in case.truths:
            if truth.expectation is not None:
                out.append(Check(case.name, f"{truth.label()} {truth.expectation}",
                                 lambda t, truth=truth: check_truth(t, truth), truth.defect))
            if truth.verdict == TRUE and truth.by:
                out.append(Check(case.name, f"{truth.label()} names {truth.by}",
                                 lambda t, truth=truth: check_truth_names(t, truth),
                                 truth.name_defect or case.naming_defect))
        out.append(Check(case.name, "every finding has a ground truth",
                         lambda t: _assert_empty(unclassified(t), "findings the ground truth does not cover"), None))
        out.append(Check(case.name, "every message names the image that made the call",
                         lambda t: _assert_empty(misnamed(t), "misnamed"), case.naming_defect))
        out.append(Check(case.name, "each process in processes[] has its own exec's argv",
                         lambda t: _assert_empty(stale_argv(t), "processes with another image's argv"),
                         case.argv_defect))
        out.append(Check(case.name, "no message names one file for several",
                         lambda t: _assert_empty(misgrouped(t), "misgrouped"), case.grouping_defect))
        out.append(Check(case.name, f"the summary is under {SUMMARY_LINES} lines",
                         _check_summary, case.summary_defect))
        out.append(Check(case.name, "the summary shows every warning and error group", _check_loud_groups, None))
    return out


def parametrize(cases: list[Case]):
    """pytest.mark.parametrize over every check of these cases; a check with a known defect is xfail
    strict: it fails the run once the defect is fixed, and the mark must go."""
    by_name = {case.name: case for case in cases}
    return pytest.mark.parametrize("case, check", [
        pytest.param(by_name[c.case], c, id=str(c), marks=[
            pytest.mark.xfail(strict=True, reason=c.defect)] if c.defect else [])
        for c in checks(cases)])


def _assert_empty(problems: list[str], what: str) -> None:
    assert not problems, f"{len(problems)} {what}:\n" + "\n".join(problems[:20])


def _check_summary(traced: Traced) -> None:
    lines = traced.summary.count("\n")
    assert lines < SUMMARY_LINES, f"the summary has {lines} lines:\n" + "\n".join(traced.summary.splitlines()[:60])


def _check_loud_groups(traced: Traced) -> None:
    """Each warning and error group is an entry of its own, before the folded info groups
    (an entry begins "  FSnnn name")."""
    loud = [f"{g['rule']} {g['name']}" for g in traced.report["groups"] if g["severity"] in ("error", "warning")]
    shown = [line.split(" [")[0].split(":")[0].split(" (x")[0].strip()
             for line in traced.summary.split("\nINFO: ")[0].splitlines() if re.match(r"  FS\d{3} ", line)]
    assert shown == loud, f"the summary shows {shown}, the report's warning and error groups are {loud}"


def missing(case: Case) -> list[str]:
    env_path = case.env.get("PATH", SYSTEM_PATH)
    return [cmd for cmd in case.needs if shutil.which(cmd, path=env_path) is None]


def new_workdir(case: Case, base: Path | None) -> Path:
    """A fresh directory for the case; one its owner can reach when the case runs as another user."""
    if case.owner is None:
        return Path(tempfile.mkdtemp(prefix=f"{case.name}-", dir=base))
    work = Path(tempfile.mkdtemp(prefix=f"fsaudit-{case.name}-", dir="/tmp"))
    shutil.chown(work, case.owner)
    return work


def run_case(case: Case, work: Path, timeout: float = 300) -> Traced:
    """Prepare the work directory, trace the case's command there with `fsaudit run`, read what it wrote."""
    if case.setup:
        case.setup(work)
    argv = case.command(work)
    options = ["--fail-on", "never", "--no-live", "--json", str(work / "fsaudit-report.json"),
               "--events", str(work / "fsaudit-events.jsonl"), "-o", str(work / "fsaudit-summary.txt")]
    env = dict(BASE_ENV, **{k: v.format(work=work) for k, v in case.env.items()})
    stdout = open(work / case.stdout, "w") if case.stdout else subprocess.DEVNULL
    started = time.monotonic()
    try:
        proc = subprocess.run(FSAUDIT + ["run", *options, "--", *argv], cwd=work, env=env, stdin=subprocess.DEVNULL,
                              stdout=stdout, stderr=subprocess.PIPE, text=True, errors="replace", timeout=timeout)
    finally:
        if case.stdout:
            stdout.close()
        if case.teardown:
            case.teardown(work)
    seconds = time.monotonic() - started
    if not (work / "fsaudit-report.json").exists():
        raise RuntimeError(f"{case.name}: fsaudit wrote no report (exit {proc.returncode}):\n{proc.stderr}")
    return Traced(case, work, seconds)


def stop_pidfile(pidfile: Path, exe: str) -> None:
    """Kill the server whose id it wrote in pidfile, if that process still runs exe, and wait until it is gone."""
    try:
        pid = int(pidfile.read_text().split()[0])
        handle = os.pidfd_open(pid)
    except (OSError, ValueError, IndexError):
        return
    try:
        if os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(exe):
            signal.pidfd_send_signal(handle, signal.SIGKILL)
            select.select([handle], [], [], 30)
    except OSError:
        pass
    finally:
        os.close(handle)
