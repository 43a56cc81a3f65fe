"""fsaudit/tracing/bpf.py, the loader without bcc: the types it gives each map
match the kernel's sizes, maps behave as bcc's tables did, and the uprobes go
where the stdio probes see their argument."""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import time

import pytest

from fsaudit.tracing import bpf as loader
from fsaudit.tracing.probecache import compiled_probe
from fsaudit.tracing.tracer import DEFAULT_RINGBUF_PAGES, STDIO_PROBES, probe_build

BPF_PROG_GET_NEXT_ID = 11   # linux/bpf.h


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "stacks"])
def compiled(request):
    return compiled_probe(*probe_build(DEFAULT_RINGBUF_PAGES, stacks=request.param, capture=False))[0]


def test_every_map_type_is_the_size_the_kernel_made_it(bpf, compiled):
    for table in compiled["tables"]:
        if table["type"] == loader.BPF_MAP_TYPE_RINGBUF:
            continue
        key, leaf = (loader.ctype(json.loads(table[d])) for d in ("key_desc", "leaf_desc"))
        assert (ctypes.sizeof(key), ctypes.sizeof(leaf)) == (table["key_size"], table["value_size"]), table["name"]


def test_a_hash_map_reads_writes_iterates_and_clears_like_bccs_tables(bpf, compiled):
    program = loader.Program(compiled)
    try:
        traced = program["traced"]
        assert traced.get(ctypes.c_uint32(1)) is None and len(traced) == 0
        for pid in (7, 8, 9):
            traced[ctypes.c_uint32(pid)] = ctypes.c_uint8(pid - 6)
        assert traced.get(ctypes.c_uint32(8)).value == 2
        assert sorted((k.value, v.value) for k, v in traced.items()) == [(7, 1), (8, 2), (9, 3)]
        traced.pop(ctypes.c_uint32(8))
        assert traced.pop(ctypes.c_uint32(8), "gone") == "gone" and len(traced) == 2
        traced.clear()
        assert len(traced) == 0
        counters = program[b"counters"]
        counters[ctypes.c_int(1)] = ctypes.c_uint64(41)
        assert counters[ctypes.c_int(1)].value == 41
        with pytest.raises(TypeError):
            program["event_scratch"].get(ctypes.c_int(0))    # a value per CPU: not read
    finally:
        program.close()


@pytest.mark.parametrize("code, skipped", [
    (b"\xf3\x0f\x1e\xfa", 4),     # endbr64
    (b"\x41\x54\x55\x53", 2),     # push %r12
    (b"\x55\x48\x89\xe5", 1),     # push %rbp
    (b"\x48\x89\xfb\x90", 0),     # mov %rdi,%rbx: may be anything else
    (b"\x41\x89\xf8\x90", 0),     # mov %edi,%r8d
])
def test_the_probe_skips_only_a_first_instruction_that_keeps_the_arguments(code, skipped):
    assert loader._first_instruction_keeps_arguments(code) == skipped


def test_the_stdio_uprobes_are_at_their_functions_in_libc():
    libc = loader.libc_path()
    offsets = loader.uprobe_offsets(libc, STDIO_PROBES)
    symbols = subprocess.run(["readelf", "-W", "--dyn-syms", libc], capture_output=True, text=True, check=True).stdout
    for symbol in STDIO_PROBES:
        value = next(int(line.split()[1], 16) for line in symbols.splitlines()
                     if len(line.split()) == 8 and line.split()[7].split("@")[0] == symbol)
        # Debian's libc maps its text at the file offsets it has (readelf -l: offset == vaddr).
        assert offsets[symbol] - value in (0, 1, 2, 4)


@pytest.mark.parametrize("link", [True, False], ids=["uprobe_multi link", "perf event"])
def test_the_stdio_uprobe_sees_the_file_a_buffer_is_allocated_for(bpf, compiled, monkeypatch, tmp_path, link):
    """This process marked traced, its first fputs to a FILE allocates the buffer:
    the probe, attached past the entry's first instruction, records that FILE."""
    if not link:   # a kernel without uprobe_multi: its link_create fails, the perf event is used
        monkeypatch.setattr(loader, "BPF_TRACE_UPROBE_MULTI", 0xFFFF)
    program = loader.Program(compiled)
    try:
        libc = loader.libc_path()
        before = (len(program._uprobe_links), len(program._perf_fds))     # the sched and signal tracepoints'
        program.attach_uprobe(libc, loader.uprobe_offsets(libc, STDIO_PROBES)["_IO_file_doallocate"],
                              "on_file_doallocate")
        added = (len(program._uprobe_links) - before[0], len(program._perf_fds) - before[1])
        assert added == ((1, 0) if link else (0, 1))
        pid = ctypes.c_uint32(os.getpid())
        # As the tracer adopts a process: its bit, then its entry (the probe asks the bitmap first).
        word = ctypes.c_uint32(pid.value // 64)
        program["adopted_bits"][word] = ctypes.c_uint64(program["adopted_bits"][word].value | 1 << pid.value % 64)
        program["traced"][pid] = ctypes.c_uint8(1)
        c = ctypes.CDLL(None)
        c.fopen.restype, c.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
        c.fputs.argtypes, c.fclose.argtypes = [ctypes.c_char_p, ctypes.c_void_p], [ctypes.c_void_p]
        fp = c.fopen(str(tmp_path / "f").encode(), b"w")
        c.fputs(b"x", fp)
        files = program["stdio_files"].get(pid)
        c.fclose(fp)
        assert files is not None and fp in list(files.fp)
    finally:
        program.close()


def _children() -> list[int]:
    return [int(pid) for task in os.listdir("/proc/self/task")
            for pid in open(f"/proc/self/task/{task}/children").read().split()]


def test_the_slow_detach_is_left_to_a_process_that_is_not_our_child(bpf, compiled):
    """close() returns without waiting for the tracepoints' grace periods, and what
    waits for them is no child of ours: attaching to a process that traced in-process
    (the API's callers) would otherwise adopt it. The programs are gone soon after."""
    before = set(_children())
    program = loader.Program(compiled)
    ids = set(_program_ids(program))
    assert program._perf_fds                     # the sched and signal tracepoints
    program.close()
    assert set(_children()) <= before
    for _ in range(100):
        if not ids & set(_loaded_program_ids()):
            break
        time.sleep(0.05)
    assert not ids & set(_loaded_program_ids()), "the holder never let the programs go"


def _program_ids(program) -> list[int]:
    """The kernel's ids of the programs program loaded (struct bpf_prog_info: type, id)."""
    ids = []
    for fd in program._loaded.values():
        info = ctypes.create_string_buffer(256)
        loader.bpf(loader.BPF_OBJ_GET_INFO_BY_FD,
                   loader._attr(("I", fd), ("I", ctypes.sizeof(info)), ("Q", ctypes.addressof(info))))
        ids.append(struct.unpack_from("<I", info.raw, 4)[0])
    return ids


def _loaded_program_ids() -> list[int]:
    """Every program id the kernel has loaded (BPF_PROG_GET_NEXT_ID until ENOENT)."""
    ids, start = [], 0
    while True:
        attr = loader._attr(("I", start))
        try:
            loader.bpf(BPF_PROG_GET_NEXT_ID, attr)
        except OSError:
            return ids
        start = struct.unpack_from("<I", attr.raw, 4)[0]          # next_id
        ids.append(start)
