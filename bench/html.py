"""The HTML report of a large trace: its size and how long it takes to write and to open.

Traces `bench/workloads.c files N` (write, fsync, rename, N times: 5N events) with --events
on a tmpfs mounted for the purpose outside /dev (where paths are out of scope), replays the
log with `fsaudit report LOG --html` (and without, to see what the timeline costs), and loads
the page in Debian's headless Chromium over the DevTools protocol (tests/browser.py): the
time from navigation to the load event, and the page's own drawing time. Root:

    .venv/bin/python bench/html.py [--files 100000] [--loads 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FSAUDIT = str(ROOT / ".venv" / "bin" / "fsaudit")
sys.path.insert(0, str(ROOT / "tests"))

from browser import Browser  # noqa: E402  (a test helper, found through the path above)


def timed(argv: list[str], **kw) -> tuple[float, float]:
    """Wall and CPU (user+sys) seconds of a command that must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(argv, check=True, **kw)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--loads", type=int, default=3, help="page loads to take the median of")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsaudit-html-bench-") as scratch:
        scratch = Path(scratch)
        workloads = scratch / "workloads"
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(workloads), str(ROOT / "bench" / "workloads.c")], check=True)
        log, page = scratch / "files.jsonl", scratch / "files.html"
        mount = scratch / "tmpfs"
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", str(mount)], check=True)
        try:
            subprocess.run([FSAUDIT, "run", "--no-live", "--fail-on", "never", "-o", "/dev/null", "--events", str(log),
                            "--", str(workloads), "files", str(args.files)], cwd=mount, check=True)
        finally:
            subprocess.run(["umount", str(mount)], check=True)
        events = sum(1 for _ in open(log)) - 2
        plain = timed([FSAUDIT, "report", str(log), "-o", "/dev/null", "--fail-on", "never"])
        drawn = timed([FSAUDIT, "report", str(log), "-o", "/dev/null", "--fail-on", "never", "--html", str(page)])
        loads, renders = [], []
        with Browser() as browser:
            for _ in range(args.loads):
                started = time.monotonic()
                tab = browser.open(page.as_uri())
                loads.append(time.monotonic() - started)
                renders.append(float(tab.evaluate("document.body.dataset.renderMs")))
                problems = tab.problems()
                if problems:
                    raise SystemExit(f"the page reported problems: {problems}")
        print(f"files {args.files}: {events:,} events; log {log.stat().st_size / 2**20:.1f} MiB")
        print(f"report: {plain[0]:.1f} s wall, {plain[1]:.1f} s CPU; with --html: {drawn[0]:.1f} s wall, "
              f"{drawn[1]:.1f} s CPU")
        print(f"page: {page.stat().st_size / 1024:.0f} KiB; load event after {statistics.median(loads):.2f} s, "
              f"drawn in {statistics.median(renders):.0f} ms (medians of {args.loads}; first load "
              f"{loads[0]:.2f} s)")


if __name__ == "__main__":
    main()
