"""Fixtures that run the real fsaudit CLI on real programs.

Tests that need the kernel tracer skip when it is unavailable, except when
FSAUDIT_REQUIRE_BPF=1 (CI), where they fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "programs"
FSAUDIT = [sys.executable, "-m", "fsaudit"]


def _tracing_available() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    result = subprocess.run(FSAUDIT + ["doctor"], capture_output=True, text=True)
    return None if result.returncode == 0 else result.stdout.strip()


@pytest.fixture(scope="session")
def bpf() -> None:
    reason = _tracing_available()
    if reason:
        if os.environ.get("FSAUDIT_REQUIRE_BPF") == "1":
            pytest.fail(f"FSAUDIT_REQUIRE_BPF=1 but the host cannot trace: {reason}")
        pytest.skip(f"cannot trace here: {reason}")


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    """Compile a C program from tests/programs once per session."""
    out = tmp_path_factory.mktemp("bin")
    built: dict[str, Path] = {}

    def compile_(name: str, *flags: str) -> Path:
        if name not in built:
            exe = out / name
            subprocess.run(["cc", "-O2", "-o", str(exe), str(PROGRAMS / f"{name}.c"), *flags], check=True)
            built[name] = exe
        return built[name]

    return compile_


class Traced:
    def __init__(self, proc: subprocess.CompletedProcess, events_path: Path, report_path: Path) -> None:
        """Parses the event log and report that `fsaudit run` wrote; its summary is in stderr."""
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        with open(events_path, encoding="ascii") as f:
            lines = f.read().splitlines()
        self.header = json.loads(lines[0])
        self.events = [json.loads(line) for line in lines[1:]]
        # The writer ends a whole log with {"trailer": ..., "events": N}.
        self.trailer = self.events.pop() if self.events and "trailer" in self.events[-1] else None
        self.report = json.loads(report_path.read_text())
        self.events_path = events_path
        self.report_path = report_path

    def of(self, syscall: str, **match) -> list[dict]:
        return [e for e in self.events if e["syscall"] == syscall and all(e.get(k) == v for k, v in match.items())]

    def rules(self) -> list[str]:
        return sorted(f["rule"] for f in self.report["findings"])


def fsaudit(*args: str, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(FSAUDIT + list(args), cwd=cwd, capture_output=True, text=True,
                          errors="surrogateescape", **kw)


def attach_while_running(argv: list[str], cwd: Path, duration: str, *options: str) -> Traced:
    """Start argv (it prints "ready" once it has begun), `fsaudit attach` to it
    for duration seconds with options, then kill it."""
    target = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout.readline() == "ready\n"
        events, report = cwd / "attach.jsonl", cwd / "r.json"
        result = fsaudit("attach", str(target.pid), "--duration", duration, "--fail-on", "never",
                         "--events", str(events), "--json", str(report), *options)
        assert result.returncode == 0, result.stderr
        return Traced(result, events, report)
    finally:
        target.kill()
        target.wait()


@pytest.fixture
def trace(bpf, tmp_path):
    """trace(argv, *options) runs `fsaudit run` in tmp_path and returns the events and report."""

    def run(argv: list[str], *options: str, cwd: Path | None = None) -> Traced:
        events, report = tmp_path / "events.jsonl", tmp_path / "report.json"
        proc = fsaudit("run", "--fail-on", "never", "--events", str(events), "--json", str(report),
                       *options, "--", *argv, cwd=cwd or tmp_path)
        assert events.exists(), proc.stderr
        return Traced(proc, events, report)

    return run
