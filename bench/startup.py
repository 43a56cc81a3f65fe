"""Start-up: `fsaudit run -- true`, wall and peak RSS, with the compiled probe cached
(warm) and without (cold: a new FSAUDIT_CACHE_DIR each run), this tree against
--baseline DIR (another checkout, set up), interleaved; medians.

    .venv/bin/python bench/startup.py [--repeat 7] [--baseline /tmp/bench-main]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME = "/usr/bin/time"
RETRIES = 300


def run_true(fsaudit: str, cache: str, tmp: Path) -> tuple[float, float, float]:
    """(wall s, user+sys CPU s, peak RSS MB) of `fsaudit run -- true`, by GNU time
    (its processes': a compile's included; the RSS is the largest one's)."""
    out = tmp / "time"
    for _ in range(RETRIES):
        done = subprocess.run([TIME, "-f", "%e %U %S %M", "-o", str(out), fsaudit, "run", "--fail-on", "never", "--", "true"],
                              cwd=tmp, env={**os.environ, "FSAUDIT_CACHE_DIR": cache},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode == 0:
            break
        # Exit 3 "attaching the stdio uprobes ... Invalid argument": a bcc-based
        # fsaudit (another checkout) holds libc's uprobes with another reference
        # counter offset meanwhile (bpf.py, attach_uprobe). That run is not timed.
        if done.returncode != 3 or "uprobes" not in done.stderr:
            raise SystemExit(f"{fsaudit} failed: {done.stderr.strip()}")
        time.sleep(2)
    else:
        raise SystemExit(f"{fsaudit}: the uprobes stayed taken {RETRIES} times")
    wall, user, sys_, rss = out.read_text().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="another checkout, run interleaved")
    args = parser.parse_args()
    trees = {"this tree": str(ROOT / ".venv" / "bin" / "fsaudit")}
    if args.baseline:
        trees["baseline"] = str(args.baseline / ".venv" / "bin" / "fsaudit")
    results: dict[tuple[str, str], list] = {}
    with tempfile.TemporaryDirectory(prefix="fsaudit-startup-") as tmpdir:
        tmp = Path(tmpdir)
        warm = str(tmp / "warm-cache")
        for fsaudit in trees.values():
            run_true(fsaudit, warm, tmp)        # fills the warm cache
        for i in range(args.repeat):
            for name, fsaudit in trees.items():
                results.setdefault((name, "warm"), []).append(run_true(fsaudit, warm, tmp))
                results.setdefault((name, "cold"), []).append(run_true(fsaudit, str(tmp / f"cold-{i}-{len(name)}"), tmp))
    print(f"{'tree':10} {'cache':5} {'wall median':>11} {'min':>6} {'max':>6} {'CPU median':>10} {'RSS median':>10}")
    for (name, cache), runs in results.items():
        walls = [w for w, _, _ in runs]
        print(f"{name:10} {cache:5} {statistics.median(walls):10.2f}s {min(walls):5.2f}s {max(walls):5.2f}s "
              f"{statistics.median(c for _, c, _ in runs):9.2f}s {statistics.median(r for _, _, r in runs):8.0f}MB")


if __name__ == "__main__":
    main()
