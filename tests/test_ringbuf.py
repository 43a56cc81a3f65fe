"""The user side of the ring buffer: record layout and backlog.

RingReader itself needs a live BPF map; every traced test reads through it,
and test_loss.py pushes it hardest. Here: the layout against the C struct
(compiled by gcc from probes/fsaudit.c's own text), records cut to their
data, and the backlog's order.
"""

from __future__ import annotations

import re
import struct
import subprocess

import pytest

from conftest import ROOT

from fsaudit.tracing.record import PATH_LEN, PY_FRAMES, RECORD_FIELDS, STACK_WORDS, RecordLayout
from fsaudit.tracing.ringbuf import Backlog

PRINT_LAYOUT = r"""
#include <stddef.h>
#include <stdio.h>
typedef unsigned long long u64; typedef long long s64; typedef unsigned int u32; typedef int s32;
%s
int main(void) {
    printf("%%zu %%zu %%zu\n", offsetof(struct event, path), offsetof(struct event, path2), sizeof(struct event));
    return 0;
}
"""


def c_layout(tmp_path, stacks: bool) -> tuple[int, ...]:
    """offsetof path, path2 and sizeof struct event as the C compiler lays them out."""
    source = (ROOT / "fsaudit" / "tracing" / "probes" / "fsaudit.c").read_text()
    declarations = re.search(r"^#define PATH_LEN.*?^struct event \{.*?^\};", source, re.S | re.M).group(0)
    program = tmp_path / "layout.c"
    program.write_text(("#define STACKS\n" if stacks else "") + PRINT_LAYOUT % declarations)
    subprocess.run(["gcc", "-o", tmp_path / "layout", program], check=True)
    return tuple(int(n) for n in subprocess.run([tmp_path / "layout"], capture_output=True, text=True,
                                                check=True).stdout.split())


@pytest.mark.parametrize("stacks", [False, True])
def test_record_layout_is_struct_event(tmp_path, stacks):
    path, path2, size = c_layout(tmp_path, stacks)
    layout = RecordLayout(stacks)
    assert layout.path_offset == path
    assert path2 == path + PATH_LEN and size == path2 + PATH_LEN


def ring_record(payload: bytes) -> bytes:
    """One record as the kernel writes it: length, page offset, data, padded to 8."""
    record = struct.pack("=II", len(payload), 0) + payload
    return record + b"\0" * (-len(record) % 8)


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


def test_stack_fields_follow_the_paths_in_the_tuple():
    layout = RecordLayout(stacks=True)
    stack = tuple(range(1000, 1000 + STACK_WORDS))
    codes, lasti = tuple(range(2000, 2000 + PY_FRAMES)), tuple(range(PY_FRAMES))
    payload = struct.pack(RecordLayout.HEAD + RecordLayout.STACK, *HEAD, *stack, *codes, *lasti) + b"/x\0"
    record = layout.unpack_from(ring_record(payload), 8)
    assert record[:13] == HEAD
    assert record[13].rstrip(b"\0") == b"/x" and record[14] == b""
    assert record[RECORD_FIELDS:] == stack + codes + lasti


def test_backlog_hands_out_records_oldest_first_across_parts():
    backlog = Backlog(memory_limit=1 << 20)
    chunk = b"abcdefgh"
    backlog.add_chunk(chunk, [0, 2, 4, 6])
    backlog.add_records(["r1", "r2"])
    backlog.add_records([])                      # nothing to add: no empty part
    backlog.add_chunk(b"XY", [0, 1])
    assert backlog.size == 10

    def unpack(data, offset):
        return data[offset:offset + 2]

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


def unpack_payload(chunk: bytes, offset: int) -> bytes:
    return chunk[offset:offset + 8]


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
