"""--stacks: the Python frames of CPython 3.11 processes.

probes/cpython.h reads, at each traced syscall, the calling thread's Python
frames as (code object address, instruction index) pairs, and ships each code
object's file, qualified name and location table once per process image as an
EV_PYCODE event. Here: which executables are CPython 3.11 (register_images
fills the probe's py_images map), and the frames as "qualname (file:line)"
(PyCodes).

Only CPython 3.11 executables that export _PyRuntime (libpython linked in, as
Debian's /usr/bin/python3.11) are registered: a `--enable-shared` build keeps
_PyRuntime in libpython3.11.so, which is not mapped yet at exec, and other
versions lay their frames out differently. Their processes get no Python frames.
"""

from __future__ import annotations

import importlib.resources
import mmap
import os
import re
import shutil
import struct
import time
from typing import Iterable, Iterator

from ..elf import ELF_MAGIC, PT_NOTE, PT_PHDR, Elf, is_elf64_le
from ..record import Record

# PY_*, BUILD_ID_LEN: probes/cpython.h's; AT_*, NT_*: <elf.h>'s (tests/test_cpython_frames.py compares them).
PY_LAYOUT_311 = 1             # the one layout probes/cpython.h knows
PY_FILE_MAX, PY_QUAL_MAX = 176, 76   # bytes of co_filename / co_qualname shipped (probes/cpython.h)
NT_GNU_BUILD_ID = 3
BUILD_ID_LEN = 20             # struct py_build_id
_CODECS = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}   # PyUnicode kinds
# The probe sources are package data (of fsaudit.tracing): an installed wheel traces as a checkout does.
PROBES = importlib.resources.files("fsaudit.tracing") / "probes"
_LOCAL_INCLUDE = re.compile(r'^#include "(\w+\.h)"$', re.MULTILINE)


def inline_headers(source: str, name: str) -> str:
    """BPF source (from the file name) with each `#include "x.h"` of PROBES
    replaced by the header's text. bcc rewrites its map syntax
    (py_procs.lookup(...)) in the main source only: a header that uses it must
    be part of that text. #line keeps compiler messages at the right file and line."""
    def expand(match: re.Match) -> str:
        line = source.count("\n", 0, match.start()) + 1   # the rest of the #include line is next
        header = PROBES / match.group(1)
        return f'#line 1 "{header}"\n{header.read_text()}#line {line} "{name}"\n'
    return _LOCAL_INCLUDE.sub(expand, source)


def image_facts(path: str) -> tuple[bytes, int] | None:
    """(GNU build-id, address of _PyRuntime) of a CPython 3.11 executable with
    libpython linked in; None for anything else. The version is the exported
    Py_Version (PY_VERSION_HEX, 3.11+), not the file name, which can lie."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != ELF_MAGIC:
                return None
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _image_facts(data)
    except (OSError, ValueError, struct.error, IndexError):
        return None


def _image_facts(data) -> tuple[bytes, int] | None:
    if not is_elf64_le(data):
        return None
    elf = Elf(data)
    if not elf.sections:
        return None
    symbols = elf.symbols(("_PyRuntime", "Py_Version"))
    version = elf.read_virtual(symbols["Py_Version"], 4) if len(symbols) == 2 else None
    if not version or len(version) < 4 or struct.unpack("<I", version)[0] >> 16 != 0x030B:
        return None
    phdrs = elf.segments()
    if not any(p[0] == PT_PHDR for p in phdrs):   # the probe computes the load bias from it
        return None
    for p_type, _, offset, _, _, filesz, _, align in phdrs:
        if p_type == PT_NOTE:
            build_id = _build_id(data[offset:offset + filesz], 8 if align == 8 else 4)
            if build_id:
                return build_id[:BUILD_ID_LEN].ljust(BUILD_ID_LEN, b"\0"), symbols["_PyRuntime"]
    return None


def _build_id(notes: bytes, align: int) -> bytes | None:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, n_type = struct.unpack_from("<III", notes, pos)
        desc = pos + 12 + -(-namesz // align) * align
        if n_type == NT_GNU_BUILD_ID and notes[pos + 12:pos + 12 + namesz] == b"GNU\0":
            return notes[desc:desc + descsz]
        pos = desc + -(-descsz // align) * align
    return None


def _interpreter(script: str) -> str | None:
    """The interpreter a #! script names (through `env`)."""
    try:
        with open(script, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = [os.fsdecode(w) for w in head[2:].split(b"\n", 1)[0].split()]
    if words and os.path.basename(words[0]) == "env":
        name = next((w for w in words[1:] if not w.startswith("-")), None)
        return shutil.which(name) if name else None
    return words[0] if words else None


def _candidates(extra_paths: Iterable[str]) -> Iterator[str]:
    for directory in dict.fromkeys(os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/usr/local/bin"]):
        try:
            with os.scandir(directory or ".") as entries:
                yield from (e.path for e in entries if e.name.startswith("python3"))
        except OSError:
            continue
    for path in extra_paths:
        path = path if os.sep in path else shutil.which(path) or path
        yield path
        interpreter = _interpreter(path)
        if interpreter:
            yield interpreter


def register_images(bpf, extra_paths: Iterable[str] = ()) -> list[str]:
    """Tell the probe which executables are CPython 3.11: python3* on PATH and
    in /usr/bin and /usr/local/bin, plus extra_paths (the command, or a script
    whose #! interpreter is looked at). Returns the registered paths."""
    images = bpf[b"py_images"]
    seen, registered = set(), []
    for path in _candidates(extra_paths):
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        facts = image_facts(real)
        if facts is None:
            continue
        build_id, runtime = facts
        value = images.Leaf()
        value.runtime, value.layout = runtime, PY_LAYOUT_311
        images[images.Key.from_buffer_copy(build_id)] = value
        registered.append(real)
    return registered


AT_PHDR, AT_PHNUM = 3, 5
PY_LAYOUT_PENDING = 255       # probes/cpython.h: its build-id is read at its first call


def attach_process(bpf, pid: int) -> None:
    """A process traced from the middle of its life had its exec before the
    probe could read where its program headers are: read it from
    /proc/PID/auxv, as py_exec would have, with a code object space of its own."""
    try:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            auxv = f.read()
    except OSError:
        return
    pairs = dict(struct.iter_unpack("<QQ", auxv[:len(auxv) // 16 * 16]))
    if AT_PHDR not in pairs:
        return
    procs = bpf[b"py_procs"]
    proc = procs.Leaf()
    proc.space = (time.monotonic_ns() << 22 | pid) & (1 << 64) - 1   # as py_exec: unique per image
    proc.at_phdr, proc.at_phnum, proc.layout = pairs[AT_PHDR], pairs.get(AT_PHNUM, 0), PY_LAYOUT_PENDING
    procs[procs.Key(pid)] = proc


def _svarint(table: bytes, pos: int) -> int:
    value = shift = 0
    while True:
        byte = table[pos]
        pos += 1
        value |= (byte & 63) << shift
        shift += 6
        if not byte & 64:
            return -(value >> 1) if value & 1 else value >> 1


def addr2line(table: bytes, firstlineno: int, lasti: int) -> int | None:
    """The line of code unit lasti per a CPython 3.11 location table (format:
    Objects/locations.md; decoded as PyCode_Addr2Line does). None where the
    table gives no line (code 15) or ends before lasti (a truncated table)."""
    if lasti < 0:
        return firstlineno
    line, start, pos = firstlineno, 0, 0
    try:
        while pos < len(table):
            first = table[pos]
            code, end = (first >> 3) & 15, start + (first & 7) + 1
            if code in (13, 14):          # no columns / long form: signed varint delta
                line += _svarint(table, pos + 1)
            elif code in (10, 11, 12):    # one-line forms: delta 0, 1, 2
                line += code - 10
            if start <= lasti < end:
                return None if code == 15 else line
            start = end
            pos += 1
            while pos < len(table) and not table[pos] & 0x80:   # entries start with bit 7 set
                pos += 1
    except IndexError:                     # an entry cut off by truncation
        pass
    return None


def _text(raw: bytes, desc: int, tail: bool) -> str:
    """A str as shipped: its characters in its kind's width; '...' marks the cut."""
    length, kind = desc >> 8, desc & 0xFF
    if kind not in _CODECS:
        return "?"
    text = raw.decode(_CODECS[kind], errors="replace")
    if length * kind > len(raw):
        text = "..." + text if tail else text + "..."
    return text


class _Code:
    def __init__(self, record: Record) -> None:
        # Filled by py_ship (probes/cpython.h), which says what each field holds.
        file_desc, qual_desc, path = record.arg3, record.arg4, record.path
        file_len = min((file_desc >> 8) * (file_desc & 0xFF), PY_FILE_MAX)
        qual_len = min((qual_desc >> 8) * (qual_desc & 0xFF), PY_QUAL_MAX)
        self.filename = _text(path[:file_len], file_desc, tail=True)
        self.qualname = _text(path[file_len + 1:file_len + 1 + qual_len], qual_desc, tail=False)
        self.firstlineno = record.arg1 - (1 << 64) if record.arg1 >= 1 << 63 else record.arg1
        self.parts = {0: record.path2[:record.arg2]}   # line table offset -> bytes
        self._table: bytes | None = None
        self._lines: dict[int, int] = {}

    def add_part(self, offset: int, data: bytes) -> None:
        self.parts[offset] = data
        self._table, self._lines = None, {}

    def line(self, lasti: int) -> int:
        if lasti not in self._lines:
            if self._table is None:
                table = b""
                while len(table) in self.parts and self.parts[len(table)]:
                    table += self.parts[len(table)]
                self._table = table
            line = addr2line(self._table, self.firstlineno, lasti)
            self._lines[lasti] = self.firstlineno if line is None else line
        return self._lines[lasti]


class PyCodes:
    """Code objects shipped by the probe, per code space: one exec'd image of a
    process and its fork children, which share their parent's code objects.

    Call add() for every EV_PYCODE record, fork() and forget() (at exec and
    exit) as the process events come, all in event order; frames() for a
    stack then sees every code object shipped before it."""

    def __init__(self) -> None:
        self._space: dict[int, int] = {}                 # pid -> space
        self._codes: dict[int, dict[int, _Code]] = {}    # space -> code address -> code

    def add(self, pid: int, record: Record) -> None:
        """An EV_PYCODE raw record (py_ship in probes/cpython.h)."""
        offset, code, space = record.ret, record.arg0, record.arg5
        self._space[pid] = space
        codes = self._codes.setdefault(space, {})
        if offset == 0:
            codes[code] = _Code(record)   # also replaces a freed code object's reused address
        elif code in codes:
            codes[code].add_part(offset, (record.path + record.path2)[:record.arg2])

    def fork(self, parent: int, child: int) -> None:
        if parent in self._space:
            self._space[child] = self._space[parent]

    def forget(self, pid: int) -> None:
        """pid exec'd or exited: its code objects are dropped when no fork relative uses them."""
        space = self._space.pop(pid, None)
        if space is not None and space not in self._space.values():
            self._codes.pop(space, None)

    def frames(self, pid: int, codes: Iterable[int], lasti: Iterable[int]) -> list[str]:
        """"qualname (file:line)" per frame, innermost first; codes end at the first 0."""
        known = self._codes.get(self._space.get(pid), {})
        out = []
        for code, index in zip(codes, lasti):
            if not code:
                break
            entry = known.get(code)
            if entry is None:
                out.append("? (unknown code)")
                continue
            index = index - (1 << 32) if index >= 1 << 31 else index   # the probe's u32
            out.append(f"{entry.qualname} ({entry.filename}:{entry.line(index)})")
        return out
