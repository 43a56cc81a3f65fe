"""PostgreSQL's throughput under `fsaudit attach`: pgbench transactions/s untraced and traced.

One cluster (initdb, a server on a unix socket in a temporary directory,
`pgbench -i -s SCALE`), then for each of --repeat rounds one untraced and one
traced `pgbench -c 4 -j 2 -T SECONDS`, interleaved (the order alternates from
round to round, so a drift of the machine's load favours neither). Traced:
`fsaudit attach` to the postmaster, which traces it, its backends and the WAL
writer and checkpointer; pgbench starts once fsaudit says it is attached and
fsaudit detaches (SIGINT) once pgbench is done. Prints one table row: the
medians of tps (pgbench's "without initial connection time"), their ratio, and
from the traced runs' reports the median events, the most lost events of a run, FS106
findings on pg_wal/* (issue #15: about 60,000, all false, before FS106 was
judged per writer) and FS106 findings in all; then the median of each round's
own ratio (steadier on a loaded machine) and every run's tps. Each --variant
NAME=COMMAND is traced as well, in the same rounds, with COMMAND as the
fsaudit command (a lower priority: `nice -n 19 .venv/bin/fsaudit`), a row of
its own. Run as root after `make setup`:

    .venv/bin/python bench/pgbench.py [--seconds 15] [--repeat 3] [--scale 5] [--variant NAME=COMMAND ...]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FSAUDIT = str(ROOT / ".venv" / "bin" / "fsaudit")
CLIENTS, THREADS = 4, 2


def bindir() -> str:
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    if not versions:
        raise SystemExit("bench/pgbench.py: PostgreSQL is not installed (`make test-tools`)")
    return max(versions, key=lambda d: [int(n) for n in re.findall(r"\d+", d)])


def as_postgres(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, text=True,
                          stdin=subprocess.DEVNULL, **kwargs)


def pgbench(bin_: str, work: Path, seconds: int) -> float:
    """One run's transactions/s, without the initial connection time."""
    out = as_postgres(f"{bin_}/pgbench", "-h", str(work), "-U", "postgres", "-c", str(CLIENTS), "-j", str(THREADS),
                      "-T", str(seconds), "-n", "postgres", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if match is None:
        raise SystemExit(f"bench/pgbench.py: no tps in pgbench's output:\n{out}")
    return float(match.group(1))


def traced(fsaudit: str, bin_: str, work: Path, seconds: int, postmaster: int, label: str) -> tuple[float, dict]:
    """tps of one run while that fsaudit attach traces the postmaster's tree, and its report.
    fsaudit: the command (split as a shell would), e.g. `nice -n 19 .venv/bin/fsaudit`."""
    report, summary = work / f"attach-{label}.json", work / f"attach-{label}.txt"
    tracer = subprocess.Popen([*shlex.split(fsaudit), "attach", str(postmaster), "--no-live", "--fail-on", "never",
                               "--json", str(report), "-o", str(summary)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = tracer.stderr.readline()
        if not line.startswith("fsaudit: attached to"):
            raise SystemExit(f"bench/pgbench.py: fsaudit attach did not attach: {line}{tracer.stderr.read()}")
        tps = pgbench(bin_, work, seconds)
        tracer.send_signal(signal.SIGINT)
        tracer.communicate(timeout=600)
    finally:
        if tracer.poll() is None:
            tracer.kill()
            tracer.wait()
    return tps, json.loads(report.read_text())


def fs106(report: dict, under: str = "/") -> int:
    return sum(1 for f in report["findings"] if f["rule"] == "FS106" and under in (f.get("path") or ""))


def measure(seconds: int, repeat: int, scale: int, tracers: dict[str, str]) -> dict:
    """One cluster; per round one untraced run and one traced run per fsaudit in tracers
    (name -> executable), the order alternating from round to round. Returns the runs'
    tps ("plain" and each name) and each tracer's reports."""
    bin_ = bindir()
    work = Path(tempfile.mkdtemp(prefix="fsaudit-pgbench-"))
    shutil.chown(work, "postgres")
    data = work / "data"
    try:
        as_postgres(f"{bin_}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", stdout=subprocess.DEVNULL)
        as_postgres(f"{bin_}/pg_ctl", "-D", str(data), "-o", f"-k {work} -c listen_addresses=",
                    "-l", str(work / "server.log"), "-w", "start", stdout=subprocess.DEVNULL)
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        as_postgres(f"{bin_}/pgbench", "-h", str(work), "-U", "postgres", "-i", "-s", str(scale), "-q",
                    "postgres", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tps: dict[str, list[float]] = {"plain": [], **{name: [] for name in tracers}}
        reports: dict[str, list[dict]] = {name: [] for name in tracers}
        kinds = ["plain", *tracers]
        for round_ in range(repeat):
            for kind in (kinds if round_ % 2 == 0 else kinds[::-1]):
                if kind == "plain":
                    tps["plain"].append(pgbench(bin_, work, seconds))
                else:
                    run_tps, report = traced(tracers[kind], bin_, work, seconds, postmaster, f"{kind}-{round_}")
                    tps[kind].append(run_tps)
                    reports[kind].append(report)
        return {"tps": tps, "reports": reports}
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", f"{bin_}/pg_ctl", "-D", str(data), "-m", "fast", "-w",
                        "stop"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="pgbench -T (default 15)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of one untraced and one traced run (default 3)")
    parser.add_argument("--scale", type=int, default=5, help="pgbench -i -s (default 5)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=COMMAND",
                        help="also trace with COMMAND as the fsaudit command, interleaved (repeatable), "
                             "e.g. nice19='nice -n 19 .venv/bin/fsaudit'")
    args = parser.parse_args()
    load_before = os.getloadavg()
    tracers = {"traced": FSAUDIT, **dict(v.split("=", 1) for v in args.variant)}
    result = measure(args.seconds, args.repeat, args.scale, tracers)
    plain = result["tps"]["plain"]
    median = statistics.median
    print("| workload | untraced tps | under fsaudit attach tps | ratio | events | lost (most) | FS106 on pg_wal | FS106 |")
    print("|---|---|---|---|---|---|---|---|")
    for name in tracers:
        under, reports = result["tps"][name], result["reports"][name]
        events = median(r["counts"]["events"] for r in reports)
        lost = max(r["counts"]["lost_events"] for r in reports)
        label = "" if name == "traced" else f", {name}"
        print(f"| pgbench -s {args.scale} -c {CLIENTS} -j {THREADS} -T {args.seconds} (median of {args.repeat}{label}) "
              f"| {median(plain):,.0f} | {median(under):,.0f} | {median(under) / median(plain):.2f} "
              f"| {events:,.0f} | {lost:,.0f} | {median(fs106(r, '/pg_wal/') for r in reports):.0f} "
              f"| {median(fs106(r) for r in reports):.0f} |")
    # Each round's traced/untraced: the two runs of a round share the machine's load.
    for name in tracers:
        under = result["tps"][name]
        paired = median(t / p for t, p in zip(under, plain))
        print(f"{name}: median of the rounds' traced/untraced ratios {paired:.2f}; each run "
              f"{', '.join(f'{t:,.0f}' for t in under)}")
    print(f"each run, untraced: {', '.join(f'{t:,.0f}' for t in plain)}; load average (1, 5, 15 min) "
          f"before {' '.join(f'{x:.1f}' for x in load_before)}, after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

if __name__ == "__main__":
    main()
