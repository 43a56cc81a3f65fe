"""fsaudit crash: what recording costs and how fast states are checked.

Usage: sudo python bench/crash.py [COMMITS] [ROUNDS]

The workload is examples/crash/sqlite_commits.py grown to COMMITS commits
(DELETE journal, synchronous=FULL) on Debian's python3. Interleaved, ROUNDS
times each, medians: the workload untraced; under `strace -f -s 65536 -xx`
(the bytes of every write, as ALICE's recorder needs them); under `fsaudit
crash --max-states 1 --check true` (loading the probe, recording with data
capture, the replay check, one state). Then ROUNDS full `fsaudit crash
--model all` runs on the three-commit workload, medians: states checked per
second and the time to the first failing state."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "crash"
PYTHON = "/usr/bin/python3"
FSAUDIT = [sys.executable, "-m", "fsaudit"]
WORKLOAD = """
import sqlite3, sys
db = sqlite3.connect("app.db", isolation_level=None)
db.execute("PRAGMA journal_mode=DELETE"); db.execute("PRAGMA synchronous=FULL")
for n in range(int(sys.argv[1])):
    db.execute("BEGIN"); db.execute("INSERT INTO t VALUES (?)", (n,)); db.execute("COMMIT")
    print(f"committed {n + 1}", flush=True)
"""


def fresh_scope() -> str:
    scope = tempfile.mkdtemp(prefix="fsaudit-bench-crash-")
    subprocess.run([PYTHON, "-c", "import sqlite3; d = sqlite3.connect('app.db'); "
                    "d.execute('CREATE TABLE t(n)'); d.commit()"], cwd=scope, check=True)
    return scope


def timed(argv: list[str], cwd: str) -> float:
    start = time.monotonic()
    subprocess.run(argv, cwd=cwd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def main() -> None:
    commits = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    workload = [PYTHON, "-c", WORKLOAD, str(commits)]
    ways = {"untraced": lambda: workload,
            "strace -f -s 65536 -xx": lambda: ["strace", "-f", "-s", "65536", "-xx", "-o", os.devnull, *workload],
            "fsaudit crash (record, 1 state)": lambda: FSAUDIT + ["crash", "--max-states", "1", "--", *workload,
                                                                 "--check", "true"]}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, argv in ways.items():
            scope = fresh_scope()
            times[name].append(timed(argv(), scope))
            subprocess.run(["rm", "-rf", scope])
    base = statistics.median(times["untraced"])
    print(f"{commits} SQLite commits, median of {rounds}:")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:34s} {median:7.2f} s  ({median / base:5.1f}x; {min(values):.2f}-{max(values):.2f} s)")
    docs = []
    for _ in range(rounds):
        scope = fresh_scope()
        report = os.path.join(scope, "..", os.path.basename(scope) + ".json")
        subprocess.run(FSAUDIT + ["crash", "--model", "all", "--json", report, "--", PYTHON,
                                  str(EXAMPLES / "sqlite_commits.py"), "DELETE", "FULL", "--check", PYTHON,
                                  str(EXAMPLES / "check_sqlite.py")], cwd=scope, stdout=subprocess.DEVNULL)
        docs.append(json.loads(Path(report).read_text()))
        subprocess.run(["rm", "-rf", scope, report])
    states = docs[0]["states"]     # the same in every round: the states and their order are seeded
    seconds = statistics.median(doc["seconds"] for doc in docs)
    rate = statistics.median(doc["states"]["checked"] / doc["seconds"] for doc in docs)
    first = statistics.median(doc["first_failure_seconds"] for doc in docs)
    print(f"SQLite acceptance (3 commits, --model all, median of {rounds}): {states['generated']} generated, "
          f"{states['distinct']} distinct, {states['checked']} checked, {states['failed']} failed in {seconds:.1f} s "
          f"({rate:.1f} states/s with minimisation); first failing state after {first:.1f} s")
    for doc in docs[1:]:
        if doc["states"] != states:
            print(f"  (another round differed: {doc['states']})")


if __name__ == "__main__":
    main()
