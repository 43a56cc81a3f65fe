"""fsaudit overhead benchmark: each workload untraced, under fsaudit, and under strace.

Prints one table: wall (median of --repeat runs), ratio to untraced, the
tracer's own CPU (fsaudit's user+sys minus the target's), events, lost
events and fsaudit's peak RSS. Run as root after `make setup`:

    .venv/bin/python bench/run.py [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FSAUDIT = str(ROOT / ".venv" / "bin" / "fsaudit")
TIME = "/usr/bin/time"
TIME_FORMAT = "%e %U %S %M"
STRACE_SYSCALLS = "write,openat,close,fsync,fdatasync,rename"

WORKLOADS = [   # name, argv tail, quick argv tail, run under strace
    ("1M x 64 B write", ["storm", "1000000"], ["storm", "100000"], True),
    ("4 KiB + fdatasync/16, 200 MB", ["datasync", "200"], ["datasync", "20"], True),
    ("100k files write+fsync+rename", ["files", "100000"], ["files", "5000"], False),
    ("8 procs x 8 threads", ["threads", "20000"], ["threads", "2000"], False),
    ("start-up: to the command's main()", ["started"], ["started"], False),
]


def timed(argv: list[str], cwd: Path, outfile: Path) -> tuple[float, float, int]:
    """(wall s, user+sys s, max RSS KiB) of argv, measured by GNU time."""
    subprocess.run([TIME, "-f", TIME_FORMAT, "-o", str(outfile), *argv], cwd=cwd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, user, sys_, rss = outfile.read_text().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss)


def fresh(work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return work


def run_row(name, tail, exe, tmp, repeat, with_strace):
    argv = [str(exe), *tail]
    base, traced, tracer_cpu, rss, straced = [], [], [], [], []
    report = tmp / "report.json"
    for _ in range(repeat):
        base.append(timed(argv, fresh(tmp / "w"), tmp / "t0")[0])
        inner = tmp / "inner"
        launched_ns = time.monotonic_ns()
        outer = timed([FSAUDIT, "run", "--fail-on", "never", "--json", str(report), "--",
                       TIME, "-f", TIME_FORMAT, "-o", str(inner), *argv], fresh(tmp / "w"), tmp / "t1")
        target_wall, target_user, target_sys = (float(x) for x in inner.read_text().split()[-4:-1])
        target_cpu = target_user + target_sys
        if tail == ["started"]:   # from launching fsaudit to the traced command's main()
            traced.append((int((tmp / "w" / "started.ns").read_text()) - launched_ns) / 1e9)
        else:
            traced.append(target_wall)
        tracer_cpu.append(outer[1] - target_cpu)
        rss.append(outer[2])
        if with_strace:
            straced.append(timed(["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={STRACE_SYSCALLS}", *argv],
                                 fresh(tmp / "w"), tmp / "t2")[0])
    counts = json.loads(report.read_text())["counts"]
    b, t = statistics.median(base), statistics.median(traced)
    return {
        "workload": name, "untraced_s": b, "traced_s": t, "ratio": t / b if b else float("nan"),
        "target_cpu_s": target_cpu, "tracer_cpu_s": statistics.median(tracer_cpu),
        "strace_ratio": statistics.median(straced) / b if straced else None,
        "events": counts["events"], "lost": counts["lost_events"], "rss_mb": max(rss) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsaudit-bench-") as tmpdir:
        tmp = Path(tmpdir)
        exe = tmp / "workloads"
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(exe), str(ROOT / "bench" / "workloads.c")], check=True)
        rows = [run_row(name, quick if args.quick else full, exe, tmp, args.repeat, strace)
                for name, full, quick, strace in WORKLOADS]
    header = f"{'workload':32} {'untraced':>9} {'fsaudit':>9} {'ratio':>6} {'strace':>7} {'tracer CPU':>11} {'events':>8} {'lost':>5} {'RSS MB':>7}"
    print(header)
    for r in rows:
        strace = f"{r['strace_ratio']:.0f}x" if r["strace_ratio"] else "-"
        ratio = f"{r['ratio']:5.2f}x" if r["untraced_s"] >= 0.01 else "     -"
        cpu = f"{r['tracer_cpu_s']:.2f}s"
        print(f"{r['workload']:32} {r['untraced_s']:8.2f}s {r['traced_s']:8.2f}s {ratio} {strace:>7} "
              f"{cpu:>11} {r['events']:>8} {r['lost']:>5} {r['rss_mb']:7.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
