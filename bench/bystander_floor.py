"""The floor under what a bystander pays: a raw tracepoint program that does nothing.

Interleaved, each repeat: the bystander (bench/bystander.c, ns per getppid())
alone; with an empty raw tracepoint program on sys_enter and sys_exit, then
on sys_exit alone (loaded here through bcc); while `fsaudit run -- sleep`
traces an unrelated command. Any program on these tracepoints puts every
task of the host on the syscall slow path and runs a BPF program per
tracepoint per syscall: what fsaudit adds above the empty pair is all its
code can still save, and the sys_exit-only row is where a probe without a
sys_enter program would start from.
Run as root after `make setup`:

    .venv/bin/python bench/bystander_floor.py [--repeat 5] [--calls 5000000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

import bystander

EXIT = b"RAW_TRACEPOINT_PROBE(sys_exit) { return 0; }\n"
EMPTY = b"RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }\n" + EXIT


def with_program(exe: Path, calls: int, text: bytes) -> float:
    from bcc import BPF

    bpf = BPF(text=text)   # RAW_TRACEPOINT_PROBE attaches on load
    try:
        return bystander.ns_per_call(exe, calls)
    finally:
        bpf.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls", type=int, default=bystander.CALLS)
    parser.add_argument("--baseline", type=Path, help="another checkout whose fsaudit runs interleaved too")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"alone": [], "empty program": [], "empty, sys_exit only": [], "fsaudit": []}
    if args.baseline:
        rows["fsaudit (baseline)"] = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "bystander"
        subprocess.run(["cc", "-O2", "-o", str(exe), str(bystander.ROOT / "bench" / "bystander.c")], check=True)
        for _ in range(args.repeat):   # interleaved: drift in the host's speed hits each alike
            rows["alone"].append(bystander.ns_per_call(exe, args.calls))
            rows["empty program"].append(with_program(exe, args.calls, EMPTY))
            rows["empty, sys_exit only"].append(with_program(exe, args.calls, EXIT))
            rows["fsaudit"].append(bystander.while_tracing(exe, args.calls))
            if args.baseline:
                rows["fsaudit (baseline)"].append(
                    bystander.while_tracing(exe, args.calls, str(args.baseline / ".venv" / "bin" / "fsaudit")))
    # The fastest run as well as the median: on a shared host a whole run can
    # land on a contended CPU (runs then come in two speeds, about 2x apart).
    alone, fastest = statistics.median(rows["alone"]), min(rows["alone"])
    for name, runs in rows.items():
        m = statistics.median(runs)
        print(f"{name:22} median {m:6.1f} ns/call {m / alone:.2f}x, fastest {min(runs):6.1f} ns/call "
              f"{min(runs) / fastest:.2f}x  (runs: {', '.join(f'{r:.0f}' for r in runs)})")


if __name__ == "__main__":
    main()
