"""Host checks: can this machine trace? One line per check, with the fix."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

TRACEFS = "/sys/kernel/tracing"
TRACEPOINTS = ["raw_syscalls/sys_enter", "raw_syscalls/sys_exit", "sched/sched_process_fork",
               "sched/sched_process_exec", "sched/sched_process_exit", "signal/signal_deliver"]
CAP_BPF, CAP_SYS_ADMIN = 39, 21


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


def _capabilities() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def run_checks(need_strace: bool = False) -> list[Check]:
    caps = _capabilities()
    privileged = os.geteuid() == 0 or bool(caps & (1 << CAP_BPF)) or bool(caps & (1 << CAP_SYS_ADMIN))
    checks = [Check("privileges", privileged, "root or CAP_BPF" if privileged else "not root and no CAP_BPF",
                    "run fsaudit as root (sudo)")]
    try:
        import bcc  # noqa: F401  (the import is the check)
        checks.append(Check("bcc", True, "system bcc importable"))
    except ImportError:
        checks.append(Check("bcc", False, "cannot import bcc (Debian python3-bpfcc)", "run `make setup`"))
    build = f"/lib/modules/{os.uname().release}/build"
    checks.append(Check("kernel headers", os.path.isdir(build), build,
                        "run `make setup` (installs linux-headers-amd64 and links them)"))
    mounted = os.path.isdir(f"{TRACEFS}/events")
    checks.append(Check("tracefs", mounted, TRACEFS if mounted else f"{TRACEFS} not mounted",
                        f"mount -t tracefs nodev {TRACEFS}"))
    if mounted:
        missing = [tp for tp in TRACEPOINTS if not os.path.isdir(f"{TRACEFS}/events/{tp}")]
        checks.append(Check("tracepoints", not missing, "missing " + ", ".join(missing) if missing else "all present",
                            "a kernel with syscall, sched and signal tracepoints"))
    strace = shutil.which("strace")
    checks.append(Check("strace", bool(strace), strace or "not found (needed by --inject)",
                        "apt-get install strace", required=need_strace))
    return checks


def first_failure(checks: list[Check]) -> Check | None:
    return next((c for c in checks if c.required and not c.ok), None)
