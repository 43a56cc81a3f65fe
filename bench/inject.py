"""Cost of --inject: 100 000 x 64-byte writes with 100 fsyncs, traced by fsaudit
without injection and with injections of growing reach.

Every call of an injected syscall makes a round trip to fsaudit's answering
thread (seccomp user notification), failed or let through; other syscalls
run untouched. Prints wall time of the traced program (median of --repeat)
and the ratio to the uninjected traced run. Run as root after `make setup`:

    .venv/bin/python bench/inject.py [--repeat 5] [--writes 100000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FSAUDIT = str(ROOT / ".venv" / "bin" / "fsaudit")
TIME = "/usr/bin/time"

VARIANTS = [   # label, --inject specs, which calls go through fsaudit
    ("traced, no injection", [], "none"),
    ("fsync=EIO@50", ["fsync=EIO@50"], "100 fsyncs"),
    ("fsync=EIO (every fsync)", ["fsync=EIO"], "100 fsyncs"),
    ("write=EIO@{n} (last write)", ["write=EIO@{n}"], "every write"),
]


def traced_wall(exe: Path, writes: int, specs: list[str], work: Path) -> float:
    inner = work / "time.out"
    options = [f"--inject={spec.format(n=writes)}" for spec in specs]
    subprocess.run([FSAUDIT, "run", "--fail-on", "never", *options, "--",
                    TIME, "-f", "%e", "-o", str(inner), str(exe), "synced", str(writes)],
                   cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return float(inner.read_text().split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--writes", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsaudit-bench-") as tmpdir:
        work = Path(tmpdir)
        exe = work / "workloads"
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(exe), str(ROOT / "bench" / "workloads.c")], check=True)
        untraced = []
        for _ in range(args.repeat):
            subprocess.run([TIME, "-f", "%e", "-o", str(work / "t"), str(exe), "synced", str(args.writes)],
                           cwd=work, check=True)
            untraced.append(float((work / "t").read_text().split()[-1]))
        rows = [(label.format(n=args.writes), reach,
                 statistics.median(traced_wall(exe, args.writes, specs, work) for _ in range(args.repeat)))
                for label, specs, reach in VARIANTS]
    base = rows[0][2]
    print(f"{args.writes} x 64 B writes + 100 fsyncs; untraced {statistics.median(untraced):.3f}s")
    print(f"{'variant':30} {'through fsaudit':>16} {'wall':>8} {'vs traced':>10}")
    for label, reach, wall in rows:
        print(f"{label:30} {reach:>16} {wall:7.3f}s {wall / base:9.2f}x")


if __name__ == "__main__":
    main()
