"""What a process outside the traced tree pays while fsaudit traces something else.

A bystander makes getppid() calls in a loop (a syscall fsaudit does not
trace) and prints ns per call; runs alone and while `fsaudit run -- sleep`
traces an unrelated command alternate, and the medians are compared. Run as
root after `make setup`:

    .venv/bin/python bench/bystander.py [--repeat 5] [--calls 5000000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FSAUDIT = str(ROOT / ".venv" / "bin" / "fsaudit")
CALLS = 5_000_000


def ns_per_call(bystander: Path, calls: int) -> float:
    return float(subprocess.run([str(bystander), str(calls)], capture_output=True, text=True, check=True).stdout)


def while_tracing(bystander: Path, calls: int, fsaudit: str = FSAUDIT) -> float:
    """The bystander's cost with fsaudit loaded and tracing `sleep`: started
    once the tracer is attached (its progress line is not needed: the command
    runs only after the probes are in place, so wait for the sleep to exist)."""
    tracer = subprocess.Popen([fsaudit, "run", "--no-live", "--fail-on", "never",
                               "--", "sleep", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _has_child_named(tracer.pid, "sleep"):
            if time.monotonic() > deadline or tracer.poll() is not None:
                raise RuntimeError("fsaudit did not start its command")
            time.sleep(0.05)
        return ns_per_call(bystander, calls)
    finally:
        tracer.terminate()
        tracer.wait()


def _has_child_named(pid: int, name: str) -> bool:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return False
    for child in children:
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == name:
                return True
        except OSError:
            pass
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bystander = Path(tmp) / "bystander"
        subprocess.run(["cc", "-O2", "-o", str(bystander), str(ROOT / "bench" / "bystander.c")], check=True)
        alone, traced = [], []
        for _ in range(args.repeat):      # interleaved: drift in the host's speed hits both alike
            alone.append(ns_per_call(bystander, args.calls))
            traced.append(while_tracing(bystander, args.calls))
    a, t = statistics.median(alone), statistics.median(traced)
    print(f"bystander getppid(): alone {a:.0f} ns/call, while fsaudit traces another tree {t:.0f} ns/call, "
          f"{t / a:.2f}x  (runs: alone {alone}, traced {traced})")


if __name__ == "__main__":
    main()
