"""The user side of the ring buffer: record layout and backlog.

RingReader itself needs a live BPF map; every traced test reads through it,
and test_loss.py pushes it hardest. Here: the record's user side
(tracing/record.py) against probes/fsaudit.h as the C compiler reads it,
constant by constant and field by field, records cut to their data, the
resolver reading each field by its name, and the backlog's order.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess

import pytest

from conftest import ROOT

from fsaudit.tracing import record
from fsaudit.tracing.record import (EV_PYCODE, EV_WRITE_RUN, PATH_INDEX, PATH_LEN, PY_FRAMES, RECORD_FIELDS,
                                    STACK_WORDS, Record, RecordLayout)
from fsaudit.tracing.resolve import Fd, Process, Resolver
from fsaudit.tracing.resolve.dispatch import _seconds
from fsaudit.tracing.syscalls import AT_FDCWD, O_CREAT, O_TRUNC, O_WRONLY, open_flag_names
from fsaudit.tracing.ringbuf import GAP_PATIENCE_S, Backlog, KernelOrder, RingReader, kernel_order

HEADER = ROOT / "fsaudit" / "tracing" / "probes" / "fsaudit.h"
C_TYPES = "typedef unsigned long long u64; typedef long long s64; typedef unsigned int u32; typedef int s32;"


def run_c(tmp_path, body: str, stacks: bool) -> list[str]:
    """The lines a C program printing body's printf calls writes, with probes/fsaudit.h included."""
    program = tmp_path / "layout.c"
    program.write_text(f"""#include <stddef.h>
#include <stdio.h>
{C_TYPES}
#include "fsaudit.h"
int main(void) {{
{body}
    return 0;
}}
""")
    exe = tmp_path / "layout"
    subprocess.run(["gcc", *(["-DSTACKS"] if stacks else []), f"-I{HEADER.parent}", "-o", exe, program], check=True)
    return subprocess.run([exe], capture_output=True, text=True, check=True).stdout.splitlines()


def test_record_py_has_every_constant_of_the_header(tmp_path):
    names = re.findall(r"^#define (\w+)", HEADER.read_text(), re.M)
    assert len(names) >= 11
    values = run_c(tmp_path, "\n".join(f'    printf("%lld\\n", (long long)({name}));' for name in names), stacks=False)
    assert {name: getattr(record, name, None) for name in names} == dict(zip(names, map(int, values)))


def python_layout(stacks: bool) -> list[tuple[str, int, int, str]]:
    """(C member, offset, size, struct format) of each member RecordLayout
    unpacks, in the record's byte order: Record's fields before path (arg<i> is
    args[i]), the stack members, path and path2."""
    formats = list(zip(Record._fields[:PATH_INDEX], RecordLayout.HEAD[1:], strict=True))
    if stacks:
        formats += RecordLayout.STACK_MEMBERS
    formats += [(name, f"{PATH_LEN}s") for name in Record._fields[PATH_INDEX:]]
    layout, offset = [], 0
    for name, fmt in formats:
        size = struct.calcsize("=" + fmt)
        layout.append((re.sub(r"^arg(\d)$", r"args[\1]", name), offset, size, fmt))
        offset += size
    return layout


@pytest.mark.parametrize("stacks", [False, True])
def test_record_layout_is_struct_event_field_by_field(tmp_path, stacks):
    """Each member's name, offset, size and signedness (of its elements; path's
    are bytes, unsigned in Python); the members end where struct event does, so
    a member only the header has leaves the ones after it, or the size, wrong."""
    layout = python_layout(stacks)
    lines = []
    for member, _, _, fmt in layout:
        element = f"((struct event *)0)->{member}" + ("[0]" if fmt[:-1].isdigit() else "")
        signed = "0" if fmt[-1] == "s" else f"(__typeof__({element}))-1 < 0"
        lines.append(f'    printf("%zu %zu %d\\n", offsetof(struct event, {member}), '
                     f'sizeof(((struct event *)0)->{member}), {signed});')
    lines.append('    printf("%zu\\n", sizeof(struct event));')
    out = run_c(tmp_path, "\n".join(lines), stacks)
    assert [tuple(map(int, line.split())) for line in out[:-1]] == \
        [(offset, size, int(fmt[-1] in "bhilq")) for _, offset, size, fmt in layout]
    _, offset, size, _ = layout[-1]
    assert int(out[-1]) == offset + size
    assert RecordLayout(stacks).path_offset == next(o for m, o, _, _ in layout if m == "path")


def ring_record(payload: bytes) -> bytes:
    """One record as the kernel writes it: length, page offset, data, padded to 8."""
    record = struct.pack("=II", len(payload), 0) + payload
    return record + b"\0" * (-len(record) % 8)


def test_a_region_that_wraps_past_the_rings_end_is_taken_whole():
    """The data pages are mapped once (the kernel's second mapping of them, which made a
    wrapping region contiguous, cost as much RSS as the ring): take() copies a region
    that wraps in two pieces, a record whose data crosses the end included."""
    page, size = 4096, 4096
    consumer, producer = bytearray(page), bytearray(page + size)
    reader = RingReader.__new__(RingReader)
    reader._view(consumer, producer, page)
    first, second, third = b"A" * 24, b"B" * 8, b"C" * 16       # the first's data crosses the end
    records = ring_record(first) + ring_record(second) + ring_record(third)
    start = size - 16
    ring = memoryview(producer)[page:]
    ring[start:] = records[:16]
    ring[:len(records) - 16] = records[16:]
    struct.pack_into("=Q", consumer, 0, 3 * size + start)       # positions grow past the size
    struct.pack_into("=Q", producer, 0, 3 * size + start + len(records))
    chunk, offsets = reader.take()
    assert chunk == records
    assert [chunk[o:o + n] for o, n in zip(offsets, (24, 8, 16))] == [first, second, third]
    assert struct.unpack_from("=Q", consumer)[0] == 3 * size + start + len(records)
    assert reader.take() is None


HEAD = (10, 9, 100, 101, 257, 7, 3, 1, 2, 3, 4, 5, 6)


def test_a_record_ends_where_its_data_does():
    layout = RecordLayout(stacks=False)
    head = struct.pack(RecordLayout.HEAD, *HEAD)
    no_path, one_path = head, head + b"/tmp/a\0"
    two_paths = head + b"/tmp/a\0".ljust(PATH_LEN, b"\0") + b"/tmp/b\0"
    chunk = b"".join(ring_record(p) for p in (no_path, one_path, two_paths))
    offsets = [8, 8 + len(ring_record(no_path)), 8 + len(ring_record(no_path)) + len(ring_record(one_path))]
    records = [layout.unpack_from(chunk, offset) for offset in offsets]
    assert [r[:13] for r in records] == [HEAD] * 3
    assert all(len(r) == RECORD_FIELDS for r in records)
    assert [r[13].rstrip(b"\0") for r in records] == [b"", b"/tmp/a", b"/tmp/a"]
    assert [r[14].rstrip(b"\0") for r in records] == [b"", b"", b"/tmp/b"]


def test_records_unpacked_together_are_those_unpacked_one_by_one():
    layout = RecordLayout(stacks=False)
    head = struct.pack(RecordLayout.HEAD, *HEAD)
    with_path = head + b"/p\0"
    # Stretches of bare records of every length up to 9, between records with a path,
    # one right at the end, and a gap (a discarded record) inside a stretch: the shapes
    # an earlier unpack_all, by stretches of bare records, told apart.
    payloads = [head] * 3 + [with_path] + [head] * 9 + [with_path, with_path] + [head] * 5 + [with_path] + [head]
    chunk, offsets = b"", []
    for n, payload in enumerate(payloads):
        record = ring_record(payload)
        if n == 7:
            chunk += ring_record(b"discarded")
        offsets.append(len(chunk) + 8)
        chunk += record
    assert layout.unpack_all(chunk, offsets) == [layout.unpack_from(chunk, offset) for offset in offsets]
    for n in range(len(offsets)):
        part = offsets[n:n + 4]
        assert layout.unpack_all(chunk, part) == [layout.unpack_from(chunk, offset) for offset in part]


def test_stack_fields_follow_the_paths_in_the_tuple():
    layout = RecordLayout(stacks=True)
    stack = tuple(range(1000, 1000 + STACK_WORDS))
    codes, lasti = tuple(range(2000, 2000 + PY_FRAMES)), tuple(range(PY_FRAMES))
    payload = struct.pack(RecordLayout.HEAD + RecordLayout.STACK, *HEAD, *stack, *codes, *lasti) + b"/x\0"
    record = layout.unpack_from(ring_record(payload), 8)
    assert record[:13] == HEAD
    assert record[13].rstrip(b"\0") == b"/x" and record[14] == b""
    assert record[RECORD_FIELDS:] == stack + codes + lasti


def test_the_resolver_and_the_tracer_read_each_field_by_its_name():
    """The resolver names a record's values by unpacking them in Record's order
    (the cheapest way): records made by name must come out as those names say."""
    pid, tid, fdcwd = 4000, 4001, (1 << 64) - 100   # AT_FDCWD as the u64 the kernel sends
    resolver = Resolver(t0_ns=0)
    proc = resolver.procs[pid] = Process(pid, "/w")
    proc.fds[5] = Fd("/w/f", "file")
    common = dict(pid=pid, tid=tid, epoch=9)
    run = Record(**common, ts=3_500_000_000, ts_first=3_000_000_000, nr=EV_WRITE_RUN, ret=0,
                 arg0=5, arg1=2, arg2=300, arg3=200, arg4=1, arg5=0)
    assert resolver.resolve(run) == [{"t": 3.5, "pid": pid, "tid": tid, "syscall": "write", "fd": 5, "path": "/w/f",
                                      "kind": "file", "calls": 2, "bytes": 300, "size_max": 200, "t_first": 3.0,
                                      "ret": 300}]
    rename = Record(**common, ts=4_000_000_000, ts_first=0, nr=316, ret=0, arg0=fdcwd, arg1=0, arg2=fdcwd,
                    arg3=0, arg4=1, arg5=0, path=b"a\0", path2=b"b\0")
    assert resolver.resolve(rename) == [{"t": 4.0, "pid": pid, "tid": tid, "syscall": "renameat2", "ret": 0,
                                         "path": "/w/a", "path2": "/w/b", "flags": ["RENAME_NOREPLACE"]}]
    mmap = Record(**common, ts=0, ts_first=0, nr=9, ret=0x7000, arg0=0, arg1=4096, arg2=3, arg3=1, arg4=5, arg5=0)
    assert resolver.resolve(mmap) == [{"t": 0.0, "pid": pid, "tid": tid, "syscall": "mmap", "ret": 0,
                                       "length": 4096, "prot": ["PROT_READ", "PROT_WRITE"], "flags": ["MAP_SHARED"],
                                       "fd": 5, "path": "/w/f", "kind": "file", "addr": 0x7000}]
    pipe = Record(**common, ts=0, ts_first=0, nr=293, ret=0, arg0=0, arg1=0, arg2=0, arg3=0, arg4=0, arg5=8 | 9 << 32)
    assert resolver.resolve(pipe) == [{"t": 0.0, "pid": pid, "tid": tid, "syscall": "pipe2", "ret": 0, "fds": [8, 9]}]
    assert kernel_order(run) == (9, True) and kernel_order(pipe) == (9, False)


def _rec(epoch: int, nr: int = 1, tid: int = 7) -> tuple:
    return tuple(Record(ts=epoch, ts_first=epoch, pid=7, tid=tid, nr=nr, epoch=epoch, ret=0,
                        arg0=0, arg1=0, arg2=0, arg3=0, arg4=0, arg5=0))


def _epochs(records: list) -> list[tuple[int, bool]]:
    return [kernel_order(rec) for rec in records]


@pytest.mark.parametrize("since_ns", [0, 1, 499, 500, 501, 999, 1_000, 1_500, 2_500, 123_456_500, 123_456_789,
                                      3_600 * 10**9 + 999_999_500, -1, -100, -500, -1_500, -2_000_001,
                                      (1 << 50) - 1, 1 << 50, (1 << 50) + 1_234_567, 1 << 60])
def test_event_times_in_integers_are_rounds_own(since_ns):
    """The resolver's fast t (dispatch._seconds, and its copy inline in the hot path)
    is round(ns / 1e9, 6) to the bit: ties, negative times (-0.0) and huge ones included."""
    expected = round(since_ns / 1e9, 6)
    resolver = Resolver(t0_ns=10**12)
    pid = 4242
    resolver.procs[pid] = Process(pid, "/w")
    rec = Record(ts=10**12 + since_ns, ts_first=10**12 + since_ns, pid=pid, tid=pid, nr=74, epoch=1, ret=0,
                 arg0=99, arg1=0, arg2=0, arg3=0, arg4=0, arg5=0)
    resolver.procs[pid].fds[99] = Fd("/w/f", "file")
    t = resolver.resolve(tuple(rec))[0]["t"]              # resolve_all's own loop
    slow_t = resolver.resolve(rec)[0]["t"]                # a Record: _resolve_into
    assert (repr(t), repr(slow_t), repr(_seconds(since_ns))) == (repr(expected),) * 3


def test_resolve_alls_loop_makes_the_events_resolve_into_does():
    """resolve_all decodes a plain record of a known process in its own loop; a Record
    goes through _resolve_into. Both must make the same events, to the order of their
    fields: opens (a new fd, an inherited dirfd), runs, syncs, closes, renames, unlinks."""
    pid, fdcwd = 4_194_000, (1 << 64) - 100   # no such process: its fds are inherited, from nowhere

    def rec(nr, epoch, ts, ts_first, *args, ret=0, path=b"", path2=b""):
        args = (*args, 0, 0, 0, 0, 0, 0)[:6]
        return Record(ts, ts_first, pid, pid, nr, epoch, ret, *args, path, path2)

    records = [
        rec(257, 1, 10, 9, fdcwd, 0, 0o1101, 0o644, ret=3, path=b"d/./a.tmp\0"),
        rec(EV_WRITE_RUN, 1, 20, 15, 3, 1, 64, 64, 1),
        rec(74, 2, 30, 25, 3),
        rec(3, 3, 40, 40, 3),
        rec(3, 4, 45, 45, 3, ret=-9),                                      # EBADF: an inherited fd
        rec(82, 5, 50, 50, path=b"d/a.tmp\0", path2=b"/w//d/a\0"),
        rec(257, 6, 60, 60, 77, 0, 0o2000000, ret=4, path=b"x\xff\0"),   # an inherited dirfd
        rec(263, 7, 70, 70, fdcwd, path=b"/w/d/../e\0"),
    ]

    def resolved(plain: bool) -> list[dict]:
        resolver = Resolver(t0_ns=0)
        resolver.procs[pid] = Process(pid, "/w")
        return [event for rec in records for event in resolver.resolve(tuple(rec) if plain else rec)]

    events = resolved(plain=True)
    assert [list(event.items()) for event in events] == [list(event.items()) for event in resolved(plain=False)]
    assert [(event["syscall"], event.get("path")) for event in events] == [
        ("openat", "/w/d/a.tmp"), ("write", "/w/d/a.tmp"), ("fsync", "/w/d/a.tmp"), ("close", "/w/d/a.tmp"),
        ("inherit", "fd:3"), ("close", "fd:3"), ("rename", "/w/d/a.tmp"), ("inherit", "fd:77"),
        ("openat", "fd:77/x\udcff"), ("unlinkat", "/w/e")]


@pytest.mark.parametrize("path", ["/a/b", "a/b", "/", "", ".", "..", "./a", "a/.", "a/..", "/a/", "a//b", "//a",
                                  "///a", "/a/./b", "/a/../b", "/.hidden/x", "a/...", "/a/b/", "../../x"])
@pytest.mark.parametrize("base", ["/w", "/", "/w/", "//w", "fd:3", ""])
def test_absolute_paths_are_normpaths_own(path, base):
    """_abs skips os.path.normpath for a path its quick test finds normal: always its answer."""
    resolver = Resolver(t0_ns=0)
    proc = resolver.procs[1] = Process(1, base)
    expected = os.path.normpath(path if path.startswith("/") else base + path if not base or base.endswith("/")
                                else base + "/" + path)
    assert resolver._abs(proc, AT_FDCWD, path, 1, 0.0, []) == expected


def test_paths_decode_as_os_fsdecode_does():
    for raw in (b"/a/b\0", b"/a\xff\xfe\0junk", b"/\xc3\xa9t\xc3\xa9\0", b"no-nul", b"\0", b""):
        assert record.decode_path(raw) == (os.fsdecode(raw.split(b"\0", 1)[0]) if raw[:1] != b"\0" else "")


def test_open_flag_names_are_a_new_list_each_time():
    first = open_flag_names(O_WRONLY | O_CREAT | O_TRUNC)
    assert first == ["O_WRONLY", "O_CREAT", "O_TRUNC"]
    first.append("changed")
    assert open_flag_names(O_WRONLY | O_CREAT | O_TRUNC) == ["O_WRONLY", "O_CREAT", "O_TRUNC"]


def test_kernel_order_sorts_a_batch_out_of_order_as_kernel_order_does():
    """A write run that reached the ring before the event whose epoch it carries goes
    out after it; runs sharing an epoch, and an event and a code object sharing one,
    keep the order they arrived in."""
    run_2a, run_2b, code_4 = _rec(2, nr=EV_WRITE_RUN, tid=8), _rec(2, nr=EV_WRITE_RUN, tid=9), _rec(4, nr=EV_PYCODE)
    arrived = [_rec(1), run_2a, _rec(3), run_2b, _rec(2), _rec(5), code_4, _rec(4)]
    assert KernelOrder().order(arrived, now=0.0, final=True) == sorted(arrived, key=kernel_order)
    assert [(rec[5], rec[3]) for rec in sorted(arrived, key=kernel_order)][1:4] == [(2, 7), (2, 8), (2, 9)]
    in_order = sorted(arrived, key=kernel_order)
    assert KernelOrder().order(list(in_order), now=0.0, final=True) == in_order


def test_kernel_order_holds_back_what_an_earlier_epoch_must_precede():
    """Records reach the ring in the order their CPUs finished them: a batch can end
    before a record whose epoch is lower than some it holds (a send on one CPU, a
    write run on another). Nothing goes out before every earlier epoch has."""
    order = KernelOrder()
    send, write_run = _rec(3, nr=44, tid=8), _rec(3, nr=EV_WRITE_RUN)   # the run began behind the send
    assert _epochs(order.order([_rec(1), _rec(2), write_run, _rec(4)], now=0.0)) == [(1, False), (2, False)]
    assert len(order) == 2
    assert _epochs(order.order([send, _rec(5)], now=0.001)) == [(3, False), (3, True), (4, False), (5, False)]
    assert len(order) == 0
    # A write run whose event went out long ago goes out as it arrives.
    assert _epochs(order.order([_rec(2, nr=EV_WRITE_RUN)], now=0.002)) == [(2, True)]


def test_kernel_order_passes_over_a_lost_record():
    order = KernelOrder()
    assert _epochs(order.order([_rec(1), _rec(3)], now=0.0)) == [(1, False)]
    assert order.order([], now=GAP_PATIENCE_S / 2) == []
    # Waited long enough; the kernel says it lost 5; the end, when nothing more is coming.
    assert _epochs(order.order([_rec(4)], now=GAP_PATIENCE_S)) == [(3, False), (4, False)]
    assert _epochs(order.order([_rec(6)], now=GAP_PATIENCE_S, lost=True)) == [(6, False)]
    assert _epochs(order.order([_rec(8)], now=GAP_PATIENCE_S, final=True)) == [(8, False)]


def test_backlog_hands_out_records_oldest_first_across_parts():
    backlog = Backlog(memory_limit=1 << 20)
    chunk = b"abcdefgh"
    backlog.add_chunk(chunk, [0, 2, 4, 6])
    backlog.add_records(["r1", "r2"])
    backlog.add_records([])                      # nothing to add: no empty part
    backlog.add_chunk(b"XY", [0, 1])
    assert backlog.size == 10

    def unpack(data, offsets):
        return [data[offset:offset + 2] for offset in offsets]

    assert backlog.next(3, unpack) == [b"ab", b"cd", b"ef"]
    assert backlog.size == 10                    # the first chunk is still partly unread
    assert backlog.next(2, unpack) == [b"gh", "r1"]
    assert backlog.size == 2
    assert backlog.next(10, unpack) == ["r2", b"XY", b"Y"]
    assert not backlog and backlog.size == 0
    assert backlog.next(10, unpack) == []


def chunk_of(*payloads: bytes) -> tuple[bytes, list[int]]:
    """A ring chunk of 8-byte records, as RingReader.take returns it."""
    chunk = b"".join(ring_record(p) for p in payloads)
    return chunk, [16 * i + 8 for i in range(len(payloads))]


def unpack_payload(chunk: bytes, offsets: list[int]) -> list[bytes]:
    return [chunk[offset:offset + 8] for offset in offsets]


def test_backlog_past_its_memory_limit_goes_through_a_file_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    backlog = Backlog(memory_limit=64)           # two chunks of two 16-byte records
    for n in range(5):
        backlog.add_chunk(*chunk_of(b"chunk%d.a" % n, b"chunk%d.b" % n))
        if n == 3:
            backlog.add_records(["injected"])    # behind chunk 3, in the file
    assert backlog.size == 64 and backlog.spilled_bytes > 0
    assert backlog.accepting
    got = []
    while backlog:
        got += backlog.next(3, unpack_payload)
    assert got == [b"chunk%d.%s" % (n, ab) for n in range(4) for ab in (b"a", b"b")] + \
        ["injected", b"chunk4.a", b"chunk4.b"]
    assert backlog.size == 0
    # Emptied, the file is reused from its start: memory first again.
    backlog.add_chunk(*chunk_of(b"again..."))
    assert backlog.next(5, unpack_payload) == [b"again..."]
    backlog.close()


def test_a_part_the_file_refuses_waits_after_it_and_stops_intake(monkeypatch):
    backlog = Backlog(memory_limit=32)
    backlog.add_chunk(*chunk_of(b"memory.a", b"memory.b"))
    backlog.add_chunk(*chunk_of(b"file...."))
    monkeypatch.setattr("os.pwrite", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    backlog.add_chunk(*chunk_of(b"refused."))
    backlog.add_records(["injected"])
    assert not backlog.accepting
    got = []
    while backlog:
        got += backlog.next(2, unpack_payload)
    assert got == [b"memory.a", b"memory.b", b"file....", b"refused.", "injected"]
    assert backlog.accepting
    backlog.close()
