"""tracing/elf.py, the one ELF reader of runtimes, stacks.cpython and stacks.native,
against binutils' readelf on binaries of this host."""

from __future__ import annotations

import mmap
import os
import re
import shutil
import subprocess

import pytest

from fsaudit.tracing.elf import PT_INTERP, PT_LOAD, PT_NOTE, PT_PHDR, Elf, is_elf64_le

BINARIES = [os.path.realpath(path) for path in ("/bin/ls", "/usr/bin/python3.11") if os.path.exists(path)]
SEGMENT_TYPES = {"LOAD": PT_LOAD, "INTERP": PT_INTERP, "NOTE": PT_NOTE, "PHDR": PT_PHDR}

pytestmark = pytest.mark.skipif(not shutil.which("readelf") or not BINARIES, reason="no readelf or no binaries")


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(params=BINARIES)
def binary(request):
    with open(request.param, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield request.param, Elf(data)


def test_header_and_program_headers_are_readelf_s(binary):
    path, elf = binary
    assert is_elf64_le(elf.data)
    assert elf.entry == int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", readelf("-h", path)).group(1), 16)
    shown = re.findall(r"^\s+([A-Z_]+)\s+(0x\w+) (0x\w+) 0x\w+ (0x\w+) (0x\w+)", readelf("-l", path), re.M)
    assert len(shown) >= 4
    # Every program header in order; the type of those fsaudit uses.
    assert [(SEGMENT_TYPES.get(kind), *(int(n, 16) for n in numbers)) for kind, *numbers in shown] == \
        [(p_type if p_type in SEGMENT_TYPES.values() else None, offset, vaddr, filesz, memsz)
         for p_type, _, offset, vaddr, _, filesz, memsz, _ in elf.segments()]


def test_sections_needed_libraries_and_dynamic_symbols_are_readelf_s(binary):
    path, elf = binary
    names = re.findall(r"^\s+\[\s*\d+\] (\S+)", readelf("-S", path), re.M)
    assert set(elf.by_name) - {""} == set(names)
    assert list(elf.needed()) == re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", readelf("-d", path))
    defined = {name: int(value, 16) for value, name in
               re.findall(r"^\s+\d+: ([0-9a-f]+)\s+\d+ (?:FUNC|OBJECT)\s+GLOBAL\s+\w+\s+\d+ (\w+)$",
                          readelf("--dyn-syms", path), re.M)}
    wanted = sorted(defined)[:20] + ["no_such_symbol"]
    assert len(wanted) > 5
    assert elf.symbols(wanted) == {name: defined[name] for name in wanted if name in defined}


def test_not_elf64_little_endian():
    assert not is_elf64_le(b"#!/bin/sh\n")
    assert not is_elf64_le(b"\x7fELF\x01\x01" + bytes(58))     # ELFCLASS32
    assert not is_elf64_le(b"\x7fELF\x02\x02" + bytes(58))     # big-endian
