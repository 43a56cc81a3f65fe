"""Fixtures that run the real fsaudit CLI on real programs.

Tests that need the kernel tracer skip when it is unavailable, except when
FSAUDIT_REQUIRE_BPF=1 (CI), where they fail instead.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "programs"
FSAUDIT = [sys.executable, "-m", "fsaudit"]
WAIT = 300     # seconds: only ever reached when something is broken (a probe loads in 60 s under load)


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


def read_until(proc: subprocess.Popen, text: str) -> str:
    """proc's stderr up to the line holding text (fails if proc ends first)."""
    seen, deadline = b"", time.monotonic() + WAIT
    while text.encode() not in seen:
        assert time.monotonic() < deadline and select.select([proc.stderr], [], [], deadline - time.monotonic())[0]
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, f"fsaudit ended before {text!r}: {seen.decode(errors='replace')}"
        seen += chunk
    return seen.decode(errors="replace")


def read_line(proc: subprocess.Popen) -> str:
    """The next line of proc's unbuffered stdout (fails if proc ends first)."""
    line, deadline = b"", time.monotonic() + WAIT
    while not line.endswith(b"\n"):
        assert time.monotonic() < deadline and select.select([proc.stdout], [], [], deadline - time.monotonic())[0]
        byte = os.read(proc.stdout.fileno(), 1)
        assert byte, f"{proc.args} ended before a whole line: {line!r}"
        line += byte
    return line.decode()


def told_done(target: subprocess.Popen) -> None:
    """Ask target (SIGUSR1) to do its work a few rounds more and wait for its "done"."""
    target.send_signal(signal.SIGUSR1)
    assert read_line(target) == "done\n"


def attach_while_running(argv: list[str], cwd: Path, *options: str,
                         wanted: Callable[[subprocess.Popen], None] = told_done) -> Traced:
    """Start argv (it prints "ready" once it has begun), `fsaudit attach` to it with
    options, wait for "attached", then wanted(target) (by default: SIGUSR1, and argv
    prints "done" once it did its work some rounds more), detach with SIGTERM and
    kill argv's process group. The target runs until the test has what it wants,
    however slowly the probe loads: nothing here counts on a clock."""
    target = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
    try:
        assert read_line(target) == "ready\n"
        events, report = cwd / "attach.jsonl", cwd / "r.json"
        attach = subprocess.Popen([*FSAUDIT, "attach", str(target.pid), "--fail-on", "never", "--events", str(events),
                                   "--json", str(report), *options],
                                  cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            said = read_until(attach, f"fsaudit: attached to pid {target.pid}")
            wanted(target)
            attach.send_signal(signal.SIGTERM)
            out, rest = attach.communicate(timeout=WAIT)
        finally:
            if attach.poll() is None:
                attach.kill()
                attach.wait()
        result = subprocess.CompletedProcess(attach.args, attach.returncode, out.decode(errors="surrogateescape"),
                                             said + rest.decode(errors="surrogateescape"))
        assert result.returncode == 0, result.stderr
        return Traced(result, events, report)
    finally:
        os.killpg(target.pid, signal.SIGKILL)
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
