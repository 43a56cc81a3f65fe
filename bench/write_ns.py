"""ns per traced 64-byte write(): the probe's cost on the write storm, without the wall-clock noise.

bench/workloads.c's storm_ns (500 chunks of 2000 writes to one file, the
fastest chunk and the 10th percentile) untraced, under `fsaudit run`, and
under each --baseline checkout's fsaudit, interleaved (the order alternates
from round to round). A chunk lasts about a millisecond, so on a shared CPU
most chunks run unpreempted: the fastest of each run, and the fastest over
the runs, is what the syscall and the probe cost, where the target's wall
time (bench/run.py's 1M-write row) moves with the machine's load by more
than the probe's whole cost. Prints each one's ns per write, its ratio and
its ns above untraced. Run as root after `make setup`:

    .venv/bin/python bench/write_ns.py [--repeat 7] [--baseline /tmp/base-probe ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def storm_ns(argv: list[str], work: Path) -> tuple[float, float]:
    """(fastest chunk, 10th percentile) ns per write of one run of argv (ending in storm_ns)."""
    subprocess.run(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    fastest, tenth = (float(x) for x in (work / "storm_ns.out").read_text().split())
    return fastest, tenth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds (default 7)")
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="another checkout (set up) whose fsaudit runs interleaved; repeatable")
    args = parser.parse_args()
    tracers = {"fsaudit": ROOT / ".venv" / "bin" / "fsaudit",
               **{str(b): b / ".venv" / "bin" / "fsaudit" for b in args.baseline}}
    with tempfile.TemporaryDirectory(prefix="fsaudit-write-ns-") as tmpdir:
        work = Path(tmpdir)
        exe = work / "workloads"
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(exe), str(ROOT / "bench" / "workloads.c")], check=True)
        kinds = ["untraced", *tracers]
        runs: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
        for round_ in range(args.repeat):
            for kind in (kinds if round_ % 2 == 0 else kinds[::-1]):
                prefix = [] if kind == "untraced" else [str(tracers[kind]), "run", "--fail-on", "never", "--"]
                runs[kind].append(storm_ns([*prefix, str(exe), "storm_ns"], work))
    alone = min(fastest for fastest, _ in runs["untraced"])
    alone_tenth = statistics.median(tenth for _, tenth in runs["untraced"])
    print(f"| ns per 64 B write ({args.repeat} runs) | fastest chunk | ratio | above untraced "
          f"| median of the runs' 10th percentiles | ratio |")
    print("|---|---|---|---|---|---|")
    for kind, measured in runs.items():
        fastest = min(f for f, _ in measured)
        tenth = statistics.median(t for _, t in measured)
        print(f"| {kind} | {fastest:.0f} | {fastest / alone:.2f}x | +{fastest - alone:.0f} "
              f"| {tenth:.0f} | {tenth / alone_tenth:.2f}x |")


if __name__ == "__main__":
    main()
