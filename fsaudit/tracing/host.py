"""Host checks: can this machine trace? One line per check, with the fix."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

TRACEFS = "/sys/kernel/tracing"
TRACEPOINTS = ["raw_syscalls/sys_enter", "raw_syscalls/sys_exit", "sched/sched_process_fork",
               "sched/sched_process_exec", "sched/sched_process_exit", "signal/signal_deliver"]
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
SECCOMP_ACTIONS = "/proc/sys/kernel/seccomp/actions_avail"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "warn")
        text = f"[{mark}] {self.name}: {self.detail}"
        return text if self.ok else f"{text} -- fix: {self.fix}"


def effective_capabilities() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def _capabilities_check() -> Check:
    """Loading tracing programs and opening their perf events takes CAP_BPF with
    CAP_PERFMON (kernel >= 5.8), or CAP_SYS_ADMIN: the effective set decides,
    not the euid (root in a container or under capsh may lack them)."""
    caps = effective_capabilities()
    has = {name for name, bit in (("CAP_SYS_ADMIN", CAP_SYS_ADMIN), ("CAP_PERFMON", CAP_PERFMON),
                                  ("CAP_BPF", CAP_BPF)) if caps >> bit & 1}
    fix = "run fsaudit as root (sudo) with its capabilities, or grant it CAP_BPF and CAP_PERFMON"
    if "CAP_BPF" in has and "CAP_PERFMON" in has:
        return Check("capabilities", True, "CAP_BPF and CAP_PERFMON")
    if "CAP_SYS_ADMIN" in has:
        return Check("capabilities", True, "CAP_SYS_ADMIN")
    held = [name for name in ("CAP_BPF", "CAP_PERFMON") if name in has]
    return Check("capabilities", False, "needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; "
                 + (f"has only {held[0]}" if held else "has none of them"), fix)


def _tracefs_checks() -> list[Check]:
    try:
        os.listdir(f"{TRACEFS}/events")
    except PermissionError:
        return [Check("tracefs", False, f"{TRACEFS} not readable (permission denied)", "run fsaudit as root (sudo)")]
    except OSError:
        return [Check("tracefs", False, f"{TRACEFS} not mounted", f"mount -t tracefs nodev {TRACEFS}")]
    missing = [tp for tp in TRACEPOINTS if not os.path.isdir(f"{TRACEFS}/events/{tp}")]
    return [Check("tracefs", True, TRACEFS),
            Check("tracepoints", not missing, "missing " + ", ".join(missing) if missing else "all present",
                  "a kernel with syscall, sched and signal tracepoints")]


def _seccomp_check() -> Check:
    """--inject hands the chosen syscalls to fsaudit by seccomp user notification (kernel >= 5.5)."""
    try:
        with open(SECCOMP_ACTIONS) as actions:
            available = "user_notif" in actions.read().split()
    except OSError:
        available = False
    return Check("seccomp user notification", available,
                 "available (for --inject)" if available else f"not in {SECCOMP_ACTIONS} (needed by --inject)",
                 "a kernel >= 5.5 built with CONFIG_SECCOMP_FILTER", required=False)


def _binutils_check() -> Check:
    missing = [tool for tool in ("addr2line", "c++filt") if shutil.which(tool) is None]
    return Check("binutils", not missing,
                 "addr2line and c++filt (for --stacks)" if not missing
                 else f"{' and '.join(missing)} not found (--stacks names no source lines or C++/Rust symbols)",
                 "apt-get install binutils", required=False)


def _bcc_check() -> Check:
    # The fixes name the distribution's packages, not `make setup`: fsaudit may be
    # installed from a wheel, far from a checkout.
    try:
        import bcc
    except ImportError:
        return Check("bcc", False, "cannot import bcc",
                     "install the distribution's bcc (Debian/Ubuntu: apt-get install python3-bpfcc) and run "
                     "fsaudit with that Python: a venv or pipx needs --system-site-packages "
                     "(the PyPI package named bcc is unrelated)")
    version = getattr(bcc, "__version__", None) or "version unknown"
    return Check("bcc", True, f"bcc {version} ({os.path.dirname(os.path.realpath(bcc.__file__))})")


def _headers_check() -> Check:
    release = os.uname().release
    build = f"/lib/modules/{release}/build"
    if os.path.isdir(build):
        return Check("kernel headers", True, f"{build} -> {os.path.realpath(build)}")
    return Check("kernel headers", False, f"{build} missing (bcc compiles the probe against them)",
                 "install your kernel's headers (Debian: apt-get install linux-headers-$(uname -r), or "
                 f"linux-headers-amd64 for a kernel without packaged headers, linked as {build})")


def run_checks() -> list[Check]:
    checks = [Check("kernel", True, f"Linux {os.uname().release} ({os.uname().machine})"),
              _capabilities_check(), _bcc_check(), _headers_check()]
    checks += _tracefs_checks()
    checks += [_seccomp_check(), _binutils_check()]
    return checks


def first_failure(checks: list[Check]) -> Check | None:
    return next((c for c in checks if c.required and not c.ok), None)
