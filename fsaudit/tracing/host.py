"""Host checks: can this machine trace? One line per check, with the fix."""

from __future__ import annotations

import importlib.util
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


def _bcc_check(load: bool) -> Check:
    """bcc compiles the probe when probecache has it not (a new kernel or
    fsaudit). load: import it (doctor); else only find it, so that a trace
    does not map its LLVM (about 150 MB) for nothing."""
    # The fixes name the distribution's packages, not `make setup`: fsaudit may be
    # installed from a wheel, far from a checkout.
    fix = ("install the distribution's bcc (Debian/Ubuntu: apt-get install python3-bpfcc) and run "
           "fsaudit with that Python: a venv or pipx needs --system-site-packages "
           "(the PyPI package named bcc is unrelated)")
    if not load:
        spec = importlib.util.find_spec("bcc")
        if spec is None or not spec.submodule_search_locations:
            return Check("bcc", False, "cannot find bcc", fix)
        where = os.path.realpath(spec.submodule_search_locations[0])
        if not os.path.isfile(os.path.join(where, "libbcc.py")):
            return Check("bcc", False, f"{where} is not bcc's Python package", fix)
        return Check("bcc", True, where)
    try:
        import bcc
    except ImportError:
        return Check("bcc", False, "cannot import bcc", fix)
    version = getattr(bcc, "__version__", None) or "version unknown"
    return Check("bcc", True, f"bcc {version} ({os.path.dirname(os.path.realpath(bcc.__file__))})")


def _cache_check() -> Check:
    """Whether `fsaudit run` (no --stacks) finds its probe compiled (probecache)."""
    from .probecache import cache_state
    from .tracer import DEFAULT_RINGBUF_PAGES, probe_build

    path, writable, warm = cache_state(*probe_build(DEFAULT_RINGBUF_PAGES, stacks=False, capture=False))
    if warm:
        return Check("probe cache", True, f"warm ({path}): traces start without compiling", required=False)
    if writable:
        return Check("probe cache", True, f"cold ({path}): the first trace compiles the probe (about a second)",
                     required=False)
    return Check("probe cache", False, f"{path} is not fsaudit's to write: every trace compiles the probe",
                 "set FSAUDIT_CACHE_DIR to a directory of your own", required=False)


def _headers_check() -> Check:
    release = os.uname().release
    build = f"/lib/modules/{release}/build"
    if os.path.isdir(build):
        return Check("kernel headers", True, f"{build} -> {os.path.realpath(build)}")
    return Check("kernel headers", False, f"{build} missing (bcc compiles the probe against them)",
                 "install your kernel's headers (Debian: apt-get install linux-headers-$(uname -r), or "
                 f"linux-headers-amd64 for a kernel without packaged headers, linked as {build})")


def run_checks(doctor: bool = False) -> list[Check]:
    """doctor: also import bcc (not just find it) and say whether the probe cache is warm."""
    checks = [Check("kernel", True, f"Linux {os.uname().release} ({os.uname().machine})"),
              _capabilities_check(), _bcc_check(load=doctor), _headers_check()]
    checks += _tracefs_checks()
    checks += [_seccomp_check(), _binutils_check()]
    if doctor:
        checks.append(_cache_check())
    return checks


def first_failure(checks: list[Check]) -> Check | None:
    return next((c for c in checks if c.required and not c.ok), None)
