"""fsaudit overhead benchmark: each workload untraced, under fsaudit, and under strace.

Prints one table: wall (median of --repeat runs), ratio to untraced, the
tracer's own CPU (fsaudit's user+sys minus the target's), events, lost
events, fsaudit's peak RSS and "done", fsaudit's own wall time (the target's
plus the analysis still to finish when it exits). With --live, each repeat also runs fsaudit
with its dashboard drawing on a 160x50 pseudo-terminal, and two columns
compare that run with the plain one. With --baseline DIR (another checkout,
set up), each repeat also runs that checkout's fsaudit, interleaved, for a
before/after table measured in one session. The bystander row is
bench/bystander.py's: ns per getppid() of a process outside the traced tree.
--pgbench and --findings add bench/pgbench.py's and bench/memory.py's rows.
Run as root after `make setup`:

    .venv/bin/python bench/run.py [--repeat 3] [--quick] [--live] [--baseline /tmp/bench-main]
                                  [--pgbench 15] [--findings 125000]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import statistics
import struct
import subprocess
import tempfile
import termios
import threading
import time
from pathlib import Path

import bystander
import memory
import pgbench

ROOT = Path(__file__).resolve().parent.parent
FSAUDIT = str(ROOT / ".venv" / "bin" / "fsaudit")
TIME = "/usr/bin/time"
TIME_FORMAT = "%e %U %S %M"
STRACE_SYSCALLS = "write,openat,close,fsync,fdatasync,rename"

# name, argv tail (of bench/workloads.c; None: the tail is the command), quick argv tail,
# run under strace, in a tmpfs of its own, fsaudit's options
WORKLOADS = [
    ("1M x 64 B write", ["storm", "1000000"], ["storm", "100000"], True, False, []),
    # Events as fast as the kernel makes them: fsync has nothing to wait for.
    ("100k files create+write+fsync+close+rename, tmpfs", ["files", "100000"], ["files", "5000"], True, True,
     ["--include", "volatile"]),
    # Every call a write, pwrite or writev to the next of 72 files: no write runs, a record per call;
    # issue 17's size, 40k iterations a thread (2.56M records at about 2M a second untraced).
    ("8 procs x 8 threads mixed, 72 files", ["mixed", "40000"], ["mixed", "1000"], False, False, []),
    ("start-up: fsaudit run -- true", None, None, False, False, []),
]


def timed(argv: list[str], cwd: Path, outfile: Path, terminal: int | None = None) -> tuple[float, float, int]:
    """(wall s, user+sys s, max RSS KiB) of argv, measured by GNU time; terminal: a pty fd for stdin/out/err."""
    stdio = subprocess.DEVNULL if terminal is None else terminal
    subprocess.run([TIME, "-f", TIME_FORMAT, "-o", str(outfile), *argv], cwd=cwd,
                   stdin=terminal, stdout=stdio, stderr=stdio)
    wall, user, sys_, rss = outfile.read_text().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss)


@contextlib.contextmanager
def mounted_tmpfs(path: str):
    """A tmpfs at path, for the rows where fsync has nothing to wait for. Not /dev/shm:
    fsaudit leaves /dev/ out of scope whatever --include says, so the rules would see
    no file there."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4g,mode=0700", "tmpfs", path], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", path], check=False)


@contextlib.contextmanager
def dashboard_terminal(columns: int = 160, lines: int = 50):
    """A pty for the dashboard to draw on; a thread reads what it draws and drops it."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))

    def drain() -> None:
        with contextlib.suppress(OSError):   # EIO once the slave side is closed
            while os.read(master, 65536):
                pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield slave
    finally:
        os.close(slave)
        reader.join(timeout=5)
        os.close(master)


def fresh(work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return work


def traced_run(argv, tail, tmp, work, report, live_terminal=None, fsaudit=FSAUDIT, options=()):
    """fsaudit run on argv in work: (the target's wall s, or launch to its main() for
    `started`; the target's user+sys s; fsaudit's own CPU s; fsaudit's max RSS KiB;
    fsaudit's wall s, analysis of what it has not caught up with included)."""
    inner = tmp / "inner"
    live = ["--live"] if live_terminal is not None else []
    launched_ns = time.monotonic_ns()
    outer = timed([fsaudit, "run", *live, *options, "--fail-on", "never", "--json", str(report), "--",
                   TIME, "-f", TIME_FORMAT, "-o", str(inner), *argv], fresh(work), tmp / "t1", live_terminal)
    target_wall, target_user, target_sys = (float(x) for x in inner.read_text().split()[-4:-1])
    target_cpu = target_user + target_sys
    if tail == ["started"]:   # from launching fsaudit to the traced command's main()
        target_wall = (int((work / "started.ns").read_text()) - launched_ns) / 1e9
    return target_wall, target_cpu, outer[1] - target_cpu, outer[2], outer[0]


def run_row(name, tail, exe, tmp, work, repeat, with_strace, live_terminal, options, baseline):
    argv = [str(exe), *tail] if tail else ["true"]
    base, traced, tracer_cpu, rss, done, straced, live, live_cpu = [], [], [], [], [], [], [], []
    before: dict[str, list] = {"traced": [], "rss": [], "done": []}
    report, before_report = tmp / "report.json", tmp / "before.json"
    for _ in range(repeat):
        base.append(timed(argv, fresh(work), tmp / "t0")[0])
        target_s, target_cpu, cpu, max_rss, fsaudit_s = traced_run(argv, tail, tmp, work, report, options=options)
        traced.append(target_s)
        tracer_cpu.append(cpu)
        rss.append(max_rss)
        done.append(fsaudit_s)
        if baseline:
            target_s, _, _, max_rss, fsaudit_s = traced_run(argv, tail, tmp, work, before_report,
                                                            fsaudit=baseline, options=options)
            before["traced"].append(target_s)
            before["rss"].append(max_rss)
            before["done"].append(fsaudit_s)
        if live_terminal is not None:
            target_s, _, cpu, _, _ = traced_run(argv, tail, tmp, work, tmp / "live.json", live_terminal)
            live.append(target_s)
            live_cpu.append(cpu)
        if with_strace:
            straced.append(timed(["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={STRACE_SYSCALLS}", *argv],
                                 fresh(work), tmp / "t2")[0])
    counts = json.loads(report.read_text())["counts"]
    b, t = statistics.median(base), statistics.median(traced)
    row = {
        "workload": name, "untraced_s": b, "traced_s": t, "ratio": t / b if b else float("nan"),
        "target_cpu_s": target_cpu, "tracer_cpu_s": statistics.median(tracer_cpu),
        "strace_ratio": statistics.median(straced) / b if straced else None,
        "events": counts["events"], "lost": counts["lost_events"], "rss_mb": max(rss) / 1024,
        "fsaudit_s": statistics.median(done),
    }
    if baseline:
        counts = json.loads(before_report.read_text())["counts"]
        row["before"] = {"traced_s": statistics.median(before["traced"]),
                         "ratio": statistics.median(before["traced"]) / b if b else float("nan"),
                         "events": counts["events"], "lost": counts["lost_events"],
                         "rss_mb": max(before["rss"]) / 1024, "fsaudit_s": statistics.median(before["done"])}
    if live:
        row.update(live_s=statistics.median(live), live_tracer_cpu_s=statistics.median(live_cpu),
                   live_lost=json.loads((tmp / "live.json").read_text())["counts"]["lost_events"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--live", action="store_true", help="also run fsaudit with its dashboard on a pty")
    parser.add_argument("--baseline", type=Path, help="another checkout whose fsaudit runs interleaved (before/after)")
    parser.add_argument("--pgbench", type=int, metavar="SECONDS",
                        help="also PostgreSQL under pgbench for SECONDS a run, untraced and under fsaudit attach")
    parser.add_argument("--findings", type=int, metavar="N", help="also fsaudit's peak RSS with N findings on unique paths")
    parser.add_argument("--only", metavar="TEXT", help="only the workloads whose name contains TEXT (no bystander row)")
    args = parser.parse_args()
    baseline = str(args.baseline / ".venv" / "bin" / "fsaudit") if args.baseline else None
    with tempfile.TemporaryDirectory(prefix="fsaudit-bench-") as tmpdir, \
            tempfile.TemporaryDirectory(prefix="fsaudit-bench-") as shmdir, mounted_tmpfs(shmdir), \
            (dashboard_terminal() if args.live else contextlib.nullcontext()) as live_terminal:
        tmp = Path(tmpdir)
        exe = tmp / "workloads"
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(exe), str(ROOT / "bench" / "workloads.c")], check=True)
        by = bystander_row(tmp, args.repeat, baseline) if args.only is None else None
        extra = []
        if args.pgbench:
            extra.append(pgbench_row(args.pgbench, args.repeat, baseline))
        if args.findings:
            extra.append(findings_row(tmp, args.findings, args.repeat, args.baseline))
        rows = [run_row(name, quick if args.quick else full, exe, tmp, Path(shmdir if tmpfs else tmpdir) / "w",
                        args.repeat, strace, live_terminal, options, baseline)
                for name, full, quick, strace, tmpfs, options in WORKLOADS if args.only is None or args.only in name]
    if by is not None:
        print(by)
    for line in extra:
        print(line)
    header = (f"{'workload':32} {'untraced':>9} {'fsaudit':>9} {'ratio':>6} {'strace':>7} {'tracer CPU':>11} "
              f"{'events':>8} {'lost':>5} {'RSS MB':>7} {'done':>8}")
    if args.live:
        header += f" {'--live':>9} {'vs plain':>8} {'live CPU':>9} {'lost':>5}"
    print(header)
    for r in rows:
        strace = f"{r['strace_ratio']:.0f}x" if r["strace_ratio"] else "-"
        ratio = f"{r['ratio']:5.2f}x" if r["untraced_s"] >= 0.01 else "     -"
        cpu = f"{r['tracer_cpu_s']:.2f}s"
        line = (f"{r['workload']:32} {r['untraced_s']:8.2f}s {r['traced_s']:8.2f}s {ratio} {strace:>7} "
                f"{cpu:>11} {r['events']:>8} {r['lost']:>5} {r['rss_mb']:7.0f} {r['fsaudit_s']:7.2f}s")
        if args.live:
            live_cpu = f"{r['live_tracer_cpu_s']:.2f}s"
            line += (f" {r['live_s']:8.2f}s {r['live_s'] / r['traced_s']:7.2f}x {live_cpu:>9} {r['live_lost']:>5}")
        print(line)
    if baseline:
        print(f"\nbefore ({args.baseline}), interleaved with the above:")
        print(f"{'workload':32} {'fsaudit':>9} {'ratio':>6} {'events':>8} {'lost':>8} {'RSS MB':>7} {'done':>8}")
        for r in rows:
            b = r["before"]
            ratio = f"{b['ratio']:5.2f}x" if r["untraced_s"] >= 0.01 else "     -"
            print(f"{r['workload']:32} {b['traced_s']:8.2f}s {ratio} {b['events']:>8} {b['lost']:>8} "
                  f"{b['rss_mb']:7.0f} {b['fsaudit_s']:7.2f}s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def bystander_row(tmp: Path, repeat: int, baseline: str | None) -> str:
    """bench/bystander.py's measurement, interleaved with the baseline's fsaudit if given."""
    exe = tmp / "bystander"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench" / "bystander.c")], check=True)
    alone, traced, before = [], [], []
    for _ in range(repeat):
        alone.append(bystander.ns_per_call(exe, bystander.CALLS))
        traced.append(bystander.while_tracing(exe, bystander.CALLS))
        if baseline:
            before.append(bystander.while_tracing(exe, bystander.CALLS, baseline))
    a, t = statistics.median(alone), statistics.median(traced)
    line = f"bystander getppid(): alone {a:.0f} ns, while fsaudit traces another tree {t:.0f} ns ({t / a:.2f}x)"
    if before:
        line += f", before: {statistics.median(before):.0f} ns ({statistics.median(before) / a:.2f}x)"
    return line


def pgbench_row(seconds: int, repeat: int, baseline: str | None) -> str:
    """bench/pgbench.py's measurement: tps untraced and under each fsaudit's attach, interleaved."""
    tracers = {"fsaudit": FSAUDIT, **({"before": baseline} if baseline else {})}
    result = pgbench.measure(seconds, repeat, 5, tracers)
    tps, median = result["tps"], statistics.median
    plain = median(tps["plain"])
    line = f"pgbench -s 5 -c 4 -T {seconds}: untraced {plain:,.0f} tps"
    for name in tracers:
        reports = result["reports"][name]
        lost = median(r["counts"]["lost_events"] for r in reports)
        line += (f", {name} attached {median(tps[name]):,.0f} tps ({median(tps[name]) / plain:.2f}x, "
                 f"{median(r['counts']['events'] for r in reports):,.0f} events, {lost:,.0f} lost)")
    return line


def findings_row(tmp: Path, n: int, repeat: int, baseline: Path | None) -> str:
    """bench/memory.py's measurement at one size: fsaudit's peak RSS with n FS101 findings."""
    program = tmp / "manyfindings"
    subprocess.run(["cc", "-O2", "-o", str(program), str(ROOT / "bench" / "manyfindings.c")], check=True)
    sources = {"fsaudit": ROOT, **({"before": baseline} if baseline else {})}
    rss: dict[str, list[float]] = {name: [] for name in sources}
    for _ in range(repeat):
        for name, source in sources.items():
            mb, findings = memory.traced(source, program, n, tmp)
            rss[name].append(mb)
    return f"{findings:,} findings on unique paths: peak RSS " + ", ".join(
        f"{name} {statistics.median(mbs):.0f} MB" for name, mbs in rss.items())


if __name__ == "__main__":
    main()
