"""fsaudit doctor judges the capabilities the process has, not its uid.

The restricted runs go through setpriv (util-linux, essential on Debian):
root with CAP_SYS_ADMIN, CAP_BPF and CAP_PERFMON dropped from its bounding
and inheritable sets, as in a container, and a user that is not root."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import FSAUDIT, fsaudit

TRACING_CAPS = ("sys_admin", "bpf", "perfmon")


@pytest.fixture
def setpriv():
    if os.geteuid() != 0:
        pytest.skip("dropping capabilities and changing user needs root")
    path = shutil.which("setpriv")
    if path is None:
        pytest.fail("setpriv (util-linux) is missing")
    return path


def without_caps(setpriv: str, *caps: str) -> list[str]:
    dropped = ",".join(f"-{cap}" for cap in caps)
    return [setpriv, f"--inh-caps={dropped}", f"--bounding-set={dropped}", "--"]


def run(argv: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True)


def failures(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[FAIL]")]


def capabilities_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if " capabilities: " in line)


@pytest.mark.parametrize("dropped, says", [
    (TRACING_CAPS, "has none of them"),
    (("sys_admin", "bpf"), "has only CAP_PERFMON"),
    (("sys_admin", "perfmon"), "has only CAP_BPF"),
])
def test_root_without_the_tracing_capabilities_cannot_trace(setpriv, tmp_path, dropped, says):
    result = run(without_caps(setpriv, *dropped) + FSAUDIT + ["doctor"], tmp_path)
    assert result.returncode == 3, result.stdout
    assert failures(result.stdout) == [
        "[FAIL] capabilities: needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; " + says
        + " -- fix: run fsaudit as root (sudo) with its capabilities, or grant it CAP_BPF and CAP_PERFMON"]


@pytest.mark.parametrize("dropped, has", [
    (("sys_admin",), "CAP_BPF and CAP_PERFMON"),
    (("bpf", "perfmon"), "CAP_SYS_ADMIN"),
])
def test_either_set_of_capabilities_is_enough(bpf, setpriv, tmp_path, dropped, has):
    result = run(without_caps(setpriv, *dropped) + FSAUDIT + ["doctor"], tmp_path)
    assert result.returncode == 0, result.stdout
    assert capabilities_line(result.stdout) == f"[ok  ] capabilities: {has}"


def test_run_refuses_at_once_without_the_capabilities(setpriv, tmp_path):
    result = run(without_caps(setpriv, *TRACING_CAPS) + FSAUDIT + ["run", "--", "touch", "ran"], tmp_path)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("fsaudit: cannot trace: [FAIL] capabilities:")
    assert not (tmp_path / "ran").exists()


def test_a_user_that_is_not_root_is_told_tracefs_is_not_readable(setpriv, tmp_path):
    result = run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + FSAUDIT + ["doctor"],
                  tmp_path)
    assert result.returncode == 3, result.stdout
    assert failures(result.stdout) == [
        "[FAIL] capabilities: needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; has none of them"
        " -- fix: run fsaudit as root (sudo) with its capabilities, or grant it CAP_BPF and CAP_PERFMON",
        "[FAIL] tracefs: /sys/kernel/tracing not readable (permission denied) -- fix: run fsaudit as root (sudo)"]


def test_inject_and_stacks_helpers_only_warn(tmp_path):
    """No binutils on PATH: a warning for --stacks, and the exit status is the other checks' alone."""
    plain = fsaudit("doctor", cwd=tmp_path)
    result = fsaudit("doctor", cwd=tmp_path, env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == plain.returncode
    assert "[warn] binutils: addr2line and c++filt not found" in result.stdout
    assert "strace" not in result.stdout
    seccomp = next(line for line in result.stdout.splitlines() if "seccomp user notification" in line)
    assert seccomp.startswith(("[ok  ]", "[warn]")) and "--inject" in seccomp
