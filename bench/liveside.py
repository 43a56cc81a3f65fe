"""The CPU of fsaudit's live side per record, without the traced program beside it.

`record FILE -- ARGS...` runs `fsaudit ARGS...` in this process and saves every
chunk it copies out of the ring buffer (and the tracer's start time) to FILE.
`replay FILE` puts those chunks through what Tracer._deliver does with them,
batch by batch (Backlog.next -> KernelOrder -> Resolver, and with --engine the
analysis), and prints the CPU of each stage per record: the best of --repeat
runs. Replays of one FILE by two trees compare their live sides on the same
records; --dump prints the events instead, to diff two trees' output. Run as
root (record), from outside the repository (`cd /tmp`) so that the tree whose
python runs it is the one measured:

    cd /tmp && /path/to/tree/.venv/bin/python /path/to/tree/bench/liveside.py record /tmp/pg.chunks -- attach PID
    cd /tmp && /path/to/tree/.venv/bin/python /path/to/tree/bench/liveside.py replay /tmp/pg.chunks
"""

from __future__ import annotations

import argparse
import atexit
import json
import pickle
import sys
import time


def record(path: str, args: list[str]) -> None:
    from fsaudit.cli import main
    from fsaudit.tracing import ringbuf, tracer

    saved: dict = {"t0": None, "chunks": []}
    take, init = ringbuf.RingReader.take, tracer.Tracer.__init__

    def taking(self):
        taken = take(self)
        if taken is not None:
            saved["chunks"].append(taken)
        return taken

    def starting(self, *a, **k):
        init(self, *a, **k)
        saved["t0"] = self.t0_ns

    ringbuf.RingReader.take, tracer.Tracer.__init__ = taking, starting
    atexit.register(lambda: pickle.dump(saved, open(path, "wb")))
    sys.argv = ["fsaudit", *args]
    main()


def replay(path: str, batch: int, engine: bool, repeat: int, dump: bool) -> None:
    from fsaudit.session import OutputOptions, Session
    from fsaudit.tracing.record import RecordLayout
    from fsaudit.tracing.resolve import Resolver
    from fsaudit.tracing.ringbuf import Backlog, KernelOrder

    saved = pickle.load(open(path, "rb"))
    layout = RecordLayout(stacks=False)
    # A tree from before RecordLayout.unpack_all took one record at a time.
    unpack = getattr(layout, "unpack_all", None) or layout.unpack_from

    def once() -> tuple[int, list[float]]:
        backlog, order, resolver = Backlog(1 << 40), KernelOrder(), Resolver(saved["t0"])
        session = Session(OutputOptions(summary_path="/dev/null"), "attach", {"argv": ["replay"]}) if engine else None
        for chunk, offsets in saved["chunks"]:
            backlog.add_chunk(chunk, offsets)
        clock, spent, records = time.process_time, [0.0] * 4, 0
        final = False
        while backlog or not final:
            final = not backlog
            a = clock()
            recs = backlog.next(batch, unpack)
            b = clock()
            ready = order.order(recs, 0.0, final=final)
            c = clock()
            events = resolver.resolve_all(ready)
            d = clock()
            if session:
                session.feed(events)
            if dump:
                for event in events:
                    print(json.dumps(event))
            e = clock()
            records += len(recs)
            for i, took in enumerate((b - a, c - b, d - c, e - d)):
                spent[i] += took
        return records, spent

    runs = [once() for _ in range(1 if dump else repeat)]
    if dump:
        return
    records, spent = min(runs, key=lambda run: sum(run[1]))
    us = [s / records * 1e6 for s in spent]
    print(f"{records:,} records, {len(saved['chunks']):,} chunks, batches of {batch}, best of {repeat}; us a record: "
          f"unpack {us[0]:.3f}, order {us[1]:.3f}, resolve {us[2]:.3f}, live side {sum(us[:3]):.3f}"
          + (f", engine {us[3]:.3f}" if engine else ""))


def main() -> None:
    from fsaudit.tracing.tracer import ANALYSIS_BATCH

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="run fsaudit ARGS..., saving the ring's chunks to FILE")
    rec.add_argument("file")
    rec.add_argument("args", nargs=argparse.REMAINDER, help="fsaudit's arguments, after --")
    rep = commands.add_parser("replay", help="the live side's CPU per record on FILE's chunks")
    rep.add_argument("file")
    rep.add_argument("--batch", type=int, default=ANALYSIS_BATCH, help="records a batch (default: the tracer's)")
    rep.add_argument("--engine", action="store_true", help="the analysis too")
    rep.add_argument("--repeat", type=int, default=3)
    rep.add_argument("--dump", action="store_true", help="print the events as JSON lines instead")
    args = parser.parse_args()
    if args.command == "record":
        record(args.file, args.args[1:] if args.args[:1] == ["--"] else args.args)
    else:
        replay(args.file, args.batch, args.engine, args.repeat, args.dump)


if __name__ == "__main__":
    main()
