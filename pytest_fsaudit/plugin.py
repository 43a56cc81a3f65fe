"""pytest --fsaudit: trace the test session with fsaudit and fail the tests whose
file I/O would not survive a crash (docs/pytest.md).

One trace for the whole session (the tracer's start-up, seconds, is paid once),
run by fsaudit.api.trace_in_background beside pytest. Each test's call phase is a
window on the events' clock; a finding belongs to the test whose window holds the
call that made it (fsaudit.api.called_at). Before and after each call the plugin
asks for the findings so far, which analyses everything the kernel recorded until
then, so a test's findings are known before its outcome is reported.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, field

import pytest

from fsaudit import api

MARKER = "fsaudit"
MARKER_HELP = ("fsaudit(allow=[...], fail_on=...): rules (codes or names) whose findings never fail this test, "
               "and the lowest severity that does (error, warning, info or never); --fsaudit applies them")
FAIL_ON = tuple(api.SEVERITIES)
# Python's bytecode cache: the import system writes it by temporary file and rename, unsynced
# (FS101), whenever a test imports a module not compiled yet; it is rebuilt when lost.
BYTECODE_CACHE = "/**/__pycache__/"
GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


@dataclass(frozen=True)
class Policy:
    """What fails one test: its marker over the command line's --fsaudit-fail-on."""
    fail_on: str
    allow: frozenset[str] = frozenset()

    def fails(self, finding) -> bool:
        return finding.rule not in self.allow and api.at_or_above(finding, self.fail_on)


@dataclass
class Audit:
    """One test's call phase, start and end on the events' clock, and the findings
    (their places in the trace's list) that are its."""
    nodeid: str
    policy: Policy
    start: float
    end: float
    found: list[int] = field(default_factory=list)      # made by a call in the window, known at its end
    recurred: list[int] = field(default_factory=list)   # made before, and counted again in the window
    late: list[int] = field(default_factory=list)       # made in the window, known only after its outcome

    def findings_known_at_end(self) -> list[int]:
        return self.found + self.recurred


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fsaudit", "fsaudit: data that would not survive a crash")
    group.addoption("--fsaudit", action="store_true", default=False,
                    help="Trace the session (pytest and its children) with fsaudit and fail each test whose "
                         "file I/O would lose data in a crash. Needs root (CAP_BPF and CAP_PERFMON).")
    group.addoption("--fsaudit-fail-on", choices=FAIL_ON, default="error", metavar="SEVERITY",
                    help=f"Lowest severity of a finding that fails its test ({', '.join(FAIL_ON)}; default error).")


def pytest_configure(config: pytest.Config) -> None:
    # Registered with or without --fsaudit: a suite that marks its tests runs clean either way.
    config.addinivalue_line("markers", MARKER_HELP)
    if not config.getoption("fsaudit"):
        return
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("--fsaudit: not with pytest-xdist's -n: each test must run in the traced process")
    config.pluginmanager.register(Auditor(config.getoption("fsaudit_fail_on")), "fsaudit-auditor")


def policy_of(item: pytest.Item, fail_on: str) -> Policy:
    """The test's policy from its fsaudit markers, the closest first: fail_on from the
    closest that gives one, allow from all of them; but --fsaudit-fail-on never fails
    nothing, whatever the markers say (a run that only reports). pytest.UsageError
    for a bad marker."""
    allow: set[str] = set()
    chosen = None
    for mark in item.iter_markers(MARKER):
        unknown = set(mark.kwargs) - {"allow", "fail_on"}
        if mark.args or unknown:
            given = ", ".join([repr(arg) for arg in mark.args] + sorted(unknown))
            raise pytest.UsageError(f"takes only allow=[...] and fail_on=..., not {given}")
        if "fail_on" in mark.kwargs and chosen is None:
            chosen = mark.kwargs["fail_on"]
            if chosen not in FAIL_ON:
                raise pytest.UsageError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {chosen!r}")
        rules = mark.kwargs.get("allow", [])
        if isinstance(rules, str):
            rules = [rules]
        if not all(isinstance(rule, str) for rule in rules):
            raise pytest.UsageError(f"allow must be a list of rule codes or names, not {rules!r}")
        try:
            allow.update(api.rule_code(rule) for rule in rules)
        except api.UsageError as exc:
            raise pytest.UsageError(f"allow: {exc}") from None
    return Policy("never" if fail_on == "never" else chosen or fail_on, frozenset(allow))


class Auditor:
    """The session's trace, and which test each finding belongs to."""

    def __init__(self, fail_on: str) -> None:
        self.fail_on = fail_on
        self.trace: api.Background | None = None
        self.findings: list = []                 # the trace's, in its stable order
        self.audits: dict[str, Audit] = {}       # by node id, in the order the tests ran
        self.policies: dict[str, Policy] = {}
        self.outside: list[int] = []             # findings made outside every test's call
        self.warnings: list[str] = []
        self.error: str | None = None            # why the trace ended early

    # Tracing, once per session.

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Before collection: imports and conftest files are traced too (outside any test).
        excludes = [BYTECODE_CACHE] + [GLOB_SPECIAL.sub(r"\\\1", path) for path in _unnamed_files_held()]
        try:
            self.trace = api.trace_in_background(api.OutputOptions(fail_on="never", excludes=excludes))
        except api.Error as exc:
            raise pytest.UsageError(f"--fsaudit: {exc}") from None

    def pytest_report_header(self) -> str:
        failing = ("no finding fails a test (--fsaudit-fail-on never)" if self.fail_on == "never"
                   else f"findings at or above {self.fail_on} fail their test")
        return f"fsaudit: tracing pid {os.getpid()} and its children; {failing}"

    def _findings(self) -> list:
        try:
            self.findings = self.trace.findings()
        except api.Error as exc:
            self.trace, self.error = None, str(exc)
            pytest.exit(f"fsaudit: {exc}", returncode=pytest.ExitCode.INTERNAL_ERROR)
        return self.findings

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # tryfirst: before pytest's cache and JUnit plugins write their files, which are not the tests'.
        if self.trace is None:
            return
        trace, self.trace = self.trace, None
        try:
            result = trace.stop()
        except api.Error as exc:
            self.error = str(exc)
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        self.findings, self.warnings = result.findings, result.warnings
        self._place_the_rest()
        late_failures = [index for audit in self.audits.values() for index in audit.late
                         if audit.policy.fails(self.findings[index])]
        if late_failures and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_unconfigure(self) -> None:
        if self.trace is not None:        # the session never got to its end
            self.trace.close()
            self.trace = None

    # Each test.

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        try:
            self.policies[item.nodeid] = policy_of(item, self.fail_on)
        except pytest.UsageError as exc:
            pytest.fail(f"@pytest.mark.{MARKER}: {exc}", pytrace=False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        before = [finding.count for finding in self._findings()]
        audit = Audit(item.nodeid, self.policies[item.nodeid], self.trace.now(), 0.0)
        yield
        audit.end = self.trace.now()
        for index, finding in enumerate(self._findings()):
            if index >= len(before):
                made = api.called_at(finding)
                if made is not None and audit.start <= made <= audit.end:
                    audit.found.append(index)
            elif finding.count > before[index]:
                audit.recurred.append(index)
        self.audits[item.nodeid] = audit

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        audit = self.audits.get(item.nodeid)
        if call.when != "call" or audit is None or not audit.findings_known_at_end():
            return
        report = outcome.get_result()
        failing = [index for index in audit.findings_known_at_end() if audit.policy.fails(self.findings[index])]
        text = self._describe(audit, audit.findings_known_at_end())
        if failing and report.passed and not hasattr(report, "wasxfail"):
            # The first line is what pytest's short summary shows.
            rules = sorted({f"{self.findings[index].rule} {self.findings[index].name}" for index in failing})
            report.outcome = "failed"
            report.longrepr = (f"fsaudit: {', '.join(rules)}\n\n{text}\n\nFindings at or above "
                               f"{audit.policy.fail_on} fail the test; @pytest.mark.{MARKER}(allow=[...], "
                               f"fail_on=...) or --fsaudit-fail-on change that.")
        else:
            report.sections.append(("fsaudit findings", text))

    # Which test each finding belongs to.

    def _place_the_rest(self) -> None:
        """The findings no test took at its end: made in a test's window but known
        only later (decided at the end of observation, or analysed after the test's
        end), else outside every test."""
        taken = {index for audit in self.audits.values() for index in audit.found}
        windows = sorted(self.audits.values(), key=lambda audit: audit.start)
        starts = [audit.start for audit in windows]
        for index, finding in enumerate(self.findings):
            if index in taken:
                continue
            made = api.called_at(finding)
            at = bisect.bisect_right(starts, made) - 1 if made is not None else -1
            if at >= 0 and made <= windows[at].end:
                windows[at].late.append(index)
            else:
                self.outside.append(index)

    def _describe(self, audit: Audit, indices: list[int]) -> str:
        """The failure text: each finding's rule, message, file and fix."""
        blocks = []
        for index in indices:
            finding = self.findings[index]
            lines = [self._headline(index, audit)]
            if finding.path:
                lines.append(f"  file: {api.printable(finding.path)}")
            lines.append(f"  fix: {finding.fix}")
            blocks.append("\n".join(lines))
        return "\n".join(blocks)

    def _headline(self, index: int, audit: Audit | None) -> str:
        finding = self.findings[index]
        notes = []
        if audit is not None and finding.rule in audit.policy.allow:
            notes.append(f"allowed by @pytest.mark.{MARKER}")
        if audit is not None and index in audit.recurred:
            notes.append(f"made before this test too, {finding.count} times in all")
        if audit is not None and index in audit.late:
            notes.append("known only after the test's outcome")
        noted = f" [{'; '.join(notes)}]" if notes else ""
        return f"{finding.rule} {finding.name} ({finding.severity}){noted}: {api.printable(finding.message)}"

    # The summary.

    def pytest_terminal_summary(self, terminalreporter) -> None:
        write = terminalreporter.write_line
        terminalreporter.section("fsaudit")
        if self.error:
            write(f"fsaudit: the trace ended early: {self.error}", red=True)
        in_tests = failed = late_failures = 0
        for audit in self.audits.values():
            indices = audit.findings_known_at_end() + audit.late
            if not indices:
                continue
            in_tests += len(indices)
            fails = any(audit.policy.fails(self.findings[index]) for index in indices)
            failed += fails
            write(f"{audit.nodeid}: {'FAILED' if fails else 'passed'}", red=fails, bold=True)
            for index in indices:
                write(f"  {self._headline(index, audit)}")
                if index in audit.late and audit.policy.fails(self.findings[index]):
                    late_failures += 1
                    write(f"    fix: {self.findings[index].fix}")
        if self.outside:
            write("outside any test (collection, fixtures, between tests; these fail nothing):", bold=True)
            for index in self.outside:
                write(f"  {self._headline(index, None)}")
        for warning in self.warnings:
            write(f"fsaudit: warning: {api.printable(warning)}", yellow=True)
        write(f"fsaudit: {_count(in_tests, 'finding')} in tests, {_count(failed, 'test')} failed by fsaudit, "
              f"{len(self.outside)} outside any test"
              + (f"; {late_failures} known only after their test's outcome fail the session" if late_failures else ""),
              bold=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _unnamed_files_held() -> list[str]:
    """The files without a name this process holds open as tracing starts (pytest's
    capture of the tests' output): their data is meant to vanish, yet would be
    called unsynced at the end of observation (FS105)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:         # the listing's own descriptor, closed by now
            continue
        if target.startswith("/") and target.endswith(" (deleted)"):
            held.append(target)
    return sorted(set(held))
