"""fsaudit's peak RSS against the number of findings on unique paths.

bench/manyfindings.c writes N files and renames each into place with no fsync:
one FS101 finding per file, all in one group. `fsaudit run --json` traces it;
GNU time gives fsaudit's peak RSS. With --before GIT_REV, the same runs are made
with that commit's fsaudit (a `git archive` copy using this venv), interleaved
with this tree's, and the table shows both. Medians of --repeat. Run as root:

    .venv/bin/python bench/memory.py [--sizes 5000,10000,20000] [--repeat 3] [--before main]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
TIME = "/usr/bin/time"


def traced(source: Path, program: Path, n: int, tmp: Path) -> tuple[float, int]:
    """(peak RSS MB of fsaudit with source on sys.path, findings in its JSON) for n files."""
    work = tmp / "w"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    report, rss = tmp / "report.json", tmp / "rss"
    subprocess.run([TIME, "-f", "%M", "-o", str(rss), PYTHON, "-m", "fsaudit", "run", "--fail-on", "never",
                    "--json", str(report), "-o", "/dev/null", "--", str(program), str(n)],
                   cwd=work, env={**os.environ, "PYTHONPATH": str(source)}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    findings = len(json.loads(report.read_text())["findings"])
    return int(rss.read_text().split()[-1]) / 1024, findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000,20000", help="files per run, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", help="a git revision to compare with, run interleaved")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="fsaudit-memory-") as tmpdir:
        tmp = Path(tmpdir)
        program = tmp / "manyfindings"
        subprocess.run(["cc", "-O2", "-o", str(program), str(ROOT / "bench" / "manyfindings.c")], check=True)
        sources = {"now": ROOT}
        if args.before:
            before = tmp / "before"
            before.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
            sources = {args.before: before, "now": ROOT}
        rss: dict = {(name, n): [] for name in sources for n in sizes}
        findings: dict = {}
        for _ in range(args.repeat):
            for n in sizes:
                for name, source in sources.items():
                    mb, findings[name, n] = traced(source, program, n, tmp)
                    rss[name, n].append(mb)
                    print(f"  {name} {n}: {mb:.0f} MB, {findings[name, n]} findings", file=sys.stderr)
    print(f"{'version':>10} {'files':>7} {'findings':>9} {'peak RSS MB':>12}")
    for name in sources:
        for n in sizes:
            print(f"{name:>10} {n:>7} {findings[name, n]:>9} {statistics.median(rss[name, n]):12.0f}")
        low, high = sizes[0], sizes[-1]
        if high > low:
            slope = (statistics.median(rss[name, high]) - statistics.median(rss[name, low])) * 1024 / (
                findings[name, high] - findings[name, low])
            print(f"{name:>10} slope: {slope:.2f} KB per finding")


if __name__ == "__main__":
    main()
