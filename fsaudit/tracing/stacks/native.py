"""--stacks: the user stacks the probe captures, turned into frames.

The probe sends, per event, the words at the user stack pointer and the
frame-pointer chain (see STACK_SCAN in probes/fsaudit.h). A frame-pointer walk
starts at the caller's caller whenever libc's syscall wrapper keeps no frame
(Debian's glibc keeps none), so the caller itself is taken from the words at
the stack pointer: the first one that is a return address, i.e. points into
executable code right after a call instruction.

Addresses are symbolized against a model of each process's executable
mappings, kept from what the tracer sees: the program and its loader where
exec put them (the auxiliary vector), libraries as they are mmap'ed, and
/proc/PID/maps for a process attached to. JIT code is named by the runtime's
/tmp/perf-PID.map where it writes one. Function names come from the ELF
symbol tables; file and line from `addr2line` where the binary has DWARF line
tables. Symbolizing happens while tracing, so the event log carries frames as
text and replays without the binaries.
"""

from __future__ import annotations

import bisect
import functools
import mmap
import os
import re
import struct
import subprocess
from dataclasses import dataclass, field

from ..elf import PT_INTERP, PT_LOAD, SHN_UNDEF, SHT_NOBITS, STT_FUNC, STT_GNU_IFUNC, SYMBOL, Elf, is_elf64_le
from ..record import STACK_SCAN

MAX_FRAMES = 16
# Frames below the program's own entry: nobody's code to fix.
STARTUP_FRAMES = frozenset({"_start", "__libc_start_main", "__libc_start_call_main", "__libc_start_main_impl",
                            "runtime.goexit", "runtime.main", "runtime.goexit.abi0"})
ENTRY_FRAMES = frozenset({"main", "main.main"})
RUST_HASH = re.compile(r"::h[0-9a-f]{16}$")


def follows_call(code: bytes) -> bool:
    """Do the bytes just before a return address end with a call instruction?
    code: the up to 7 bytes before it. Forms: e8 rel32, and ff /2 with any
    ModRM/SIB/displacement (call through a register or memory)."""
    if len(code) >= 5 and code[-5] == 0xE8:
        return True
    for length in range(2, min(len(code), 7) + 1):
        if code[-length] != 0xFF:
            continue
        modrm = code[-length + 1]
        mod, reg, rm = modrm >> 6, (modrm >> 3) & 7, modrm & 7
        if reg != 2:
            continue
        size = 2
        if mod != 3 and rm == 4:
            size += 1                                   # SIB byte
            if mod == 0 and code[-length + 2] & 7 == 5:
                size += 4                               # SIB with disp32, no base
        if mod == 1:
            size += 1
        elif mod == 2 or (mod == 0 and rm == 5):
            size += 4
        if size == length:
            return True
    return False


@functools.lru_cache(maxsize=4096)
def demangle(name: str) -> str:
    """C++ and Rust symbol names as their source spells them (binutils' c++filt);
    a Rust legacy name loses its hash suffix."""
    if not name.startswith(("_Z", "_R")):
        return name
    try:
        text = subprocess.run(["c++filt", name], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return name
    return RUST_HASH.sub("", text) or name


class ElfImage:
    """One ELF file's segments and function symbols, read once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.entry = 0
        self.interp: str | None = None
        self.loads: list[tuple[int, int, int, int]] = []     # (p_offset, p_filesz, p_vaddr, p_memsz)
        self._starts: list[int] = []
        self._symbols: list[tuple[int, int, str]] = []        # (start, end, name), sorted
        self.has_lines = False
        self._data = None
        with open(path, "rb") as f:
            self._data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        data = self._data
        if not is_elf64_le(data):
            raise ValueError("not an ELF64 little-endian file")
        elf = Elf(data)
        self.entry = elf.entry
        for p_type, _, offset, vaddr, _, filesz, memsz, _ in elf.segments():
            if p_type == PT_LOAD:
                self.loads.append((offset, filesz, vaddr, memsz))
            elif p_type == PT_INTERP:
                self.interp = data[offset:offset + filesz].split(b"\0", 1)[0].decode("latin-1")
        if elf.sections:
            self.has_lines = ".debug_line" in elf.by_name or ".zdebug_line" in elf.by_name
            self._read_symbols(elf)

    def _read_symbols(self, elf: Elf) -> None:
        best: dict[int, tuple[int, str]] = {}
        for table in (".symtab", ".dynsym"):
            section = elf.by_name.get(table)
            if section is None or section[1] == SHT_NOBITS or section[6] >= len(elf.sections):
                continue
            strtab = elf.sections[section[6]][4]
            for offset in range(section[4], section[4] + section[5], SYMBOL.size):
                st_name, info, _, shndx, value, size = SYMBOL.unpack_from(self._data, offset)
                if shndx == SHN_UNDEF or not value or (info & 0xF) not in (STT_FUNC, STT_GNU_IFUNC):
                    continue
                name = elf.string(strtab, st_name)
                known = best.get(value)
                # Of aliases at one address, the public name: fewer leading underscores.
                if known is None or len(name) - len(name.lstrip("_")) < len(known[1]) - len(known[1].lstrip("_")):
                    best[value] = (max(size, known[0] if known else 0), name)
            if best:
                break                    # .symtab has all .dynsym has
        self._symbols = sorted((start, start + max(size, 1), name) for start, (size, name) in best.items())
        self._starts = [s[0] for s in self._symbols]

    def vaddr(self, file_offset: int) -> int | None:
        for offset, filesz, vaddr, _ in self.loads:
            if offset <= file_offset < offset + filesz:
                return vaddr + file_offset - offset
        return None

    def bytes_before(self, file_offset: int, count: int) -> bytes:
        start = max(file_offset - count, 0)
        return self._data[start:file_offset]

    def symbol(self, vaddr: int) -> str | None:
        i = bisect.bisect_right(self._starts, vaddr) - 1
        if i >= 0:
            start, end, name = self._symbols[i]
            if vaddr < end or end == start + 1:       # size 0: up to the next symbol
                return name
        return None


@dataclass
class AddressSpace:
    """A process's executable mappings: (start, end, path, file offset at start), newest first."""
    mappings: list = field(default_factory=list)
    cache: dict = field(default_factory=dict)     # address -> (path, file offset) or None

    def copy(self) -> AddressSpace:
        return AddressSpace(list(self.mappings))

    def map(self, start: int, length: int, path: str, offset: int) -> None:
        self.mappings.insert(0, (start, start + length, path, offset))
        self.cache.clear()

    def unmap(self, start: int, length: int) -> None:
        end = start + length
        kept = [m for m in self.mappings if m[1] <= start or m[0] >= end]
        if len(kept) != len(self.mappings):
            self.mappings = kept
            self.cache.clear()

    def map_image(self, image: ElfImage, bias: int) -> None:
        """An ELF the kernel loaded (the program, its loader): each PT_LOAD at bias + p_vaddr."""
        for offset, filesz, vaddr, _ in image.loads:
            self.map(bias + vaddr, filesz, image.path, offset)

    def locate(self, address: int) -> tuple[str, int] | None:
        hit = self.cache.get(address, False)
        if hit is False:
            hit = next(((path, offset + address - start) for start, end, path, offset in self.mappings
                        if start <= address < end), None)
            self.cache[address] = hit
        return hit

    @classmethod
    def from_proc(cls, pid: int) -> AddressSpace:
        """A running process's executable file mappings, from /proc/PID/maps."""
        space = cls()
        try:
            with open(f"/proc/{pid}/maps") as maps:
                lines = maps.read().splitlines()
        except OSError:
            return space
        for line in lines:
            parts = line.split(None, 5)
            if len(parts) == 6 and "x" in parts[1] and parts[5].startswith("/"):
                start, end = (int(x, 16) for x in parts[0].split("-"))
                space.mappings.append((start, end, parts[5].removesuffix(" (deleted)"), int(parts[2], 16)))
        return space


class _Addr2line:
    """One `addr2line` server per binary with line tables: an address in, its
    function and file:line out, with the functions inlined there (innermost first)."""

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen(["addr2line", "-a", "-f", "-i", "-C", "-e", path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def lookup(self, vaddr: int) -> list[tuple[str | None, str | None]]:
        # -a echoes each address before its frames: the echo of a second
        # address, 0, marks where this one's (variable number of) frames end.
        self.proc.stdin.write(f"{vaddr:#x}\n0\n")
        self.proc.stdin.flush()
        read = self.proc.stdout.readline
        read()                                   # this address's echo
        frames = []
        while True:
            function = read().strip()
            if not function:                     # addr2line is gone
                return frames
            if function.startswith("0x"):        # the echo of address 0
                break
            where = read().strip().split(" (discriminator", 1)[0]
            frames.append((None if function == "??" else function,
                           None if where.startswith("??") or where.endswith(":0") or where.endswith(":?") else where))
        read(), read()                           # the frame of address 0
        return frames

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


class Symbolizer:
    """Addresses to frame text: "function (file:line)", "function", or "?? (binary+0xoffset)"."""

    def __init__(self) -> None:
        self._images: dict[str, ElfImage | None] = {}
        self._lines: dict[str, _Addr2line | None] = {}
        self._frames: dict[tuple[str, int], tuple[str, ...]] = {}   # (binary, file offset) -> frames
        self._perf_maps: dict[int, tuple[int, list, list]] = {}     # pid -> (size read, starts, entries)

    def image(self, path: str) -> ElfImage | None:
        if path not in self._images:
            try:
                self._images[path] = ElfImage(path)
            except (OSError, ValueError, struct.error, IndexError):
                self._images[path] = None
        return self._images[path]

    def is_return_address(self, pid: int, space: AddressSpace, address: int) -> bool:
        where = space.locate(address)
        if where is None:
            return self._jit_frame(pid, address) is not None
        image = self.image(where[0])
        return image is not None and follows_call(image.bytes_before(where[1], 7))

    def frames(self, pid: int, space: AddressSpace, words, until: str | None = None) -> list[str]:
        """The frames of one captured stack, innermost first; with until, only
        those before the first frame in that file (an interpreter's own)."""
        scan, chain = words[:STACK_SCAN], [w for w in words[STACK_SCAN:] if w]
        if not chain:
            return []
        addresses = [chain[0]]                  # where the syscall was made
        caller = next((w for w in scan if self.is_return_address(pid, space, w)), None)
        if caller is not None and caller not in chain[1:2]:
            addresses.append(caller)
        for address in chain[1:]:               # the frame-pointer chain, while it is plausible
            if not self.is_return_address(pid, space, address):
                break
            addresses.append(address)
        if until is not None:
            inside = [i for i, address in enumerate(addresses) if (space.locate(address) or ("",))[0] == until]
            addresses = addresses[:inside[0]] if inside else addresses
        out: list[str] = []
        for i, address in enumerate(addresses):
            # A return address is the instruction after the call: its line is the call's.
            functions = set()
            for frame in self.frame(pid, space, address if i == 0 else address - 1):
                function = frame.split(" (", 1)[0]
                if function in STARTUP_FRAMES:
                    return out[:MAX_FRAMES]
                out.append(frame)
                functions.add(function)
            if functions & ENTRY_FRAMES:        # what called the program's entry is not its code
                break
        return out[:MAX_FRAMES]

    def frame(self, pid: int, space: AddressSpace, address: int) -> tuple[str, ...]:
        """The frames at one address: more than one where functions were inlined there."""
        where = space.locate(address)
        if where is None:
            return (self._jit_frame(pid, address) or f"{address:#x}",)
        frames = self._frames.get(where)
        if frames is None:
            frames = self._frames[where] = self._describe(*where)
        return frames

    def _describe(self, path: str, file_offset: int) -> tuple[str, ...]:
        image = self.image(path)
        vaddr = image.vaddr(file_offset) if image else None
        if vaddr is None:
            return (f"?? ({os.path.basename(path)}+{file_offset:#x})",)
        name = image.symbol(vaddr)
        if image.has_lines:
            server = self._lines.get(path, False)
            if server is False:
                try:
                    server = self._lines[path] = _Addr2line(path)
                except OSError:           # no binutils: names only
                    server = self._lines[path] = None
            lines = server.lookup(vaddr) if server is not None else []
            if any(where for _, where in lines):
                return tuple(f"{function or name or '??'} ({where})" if where else (function or name or "??")
                             for function, where in lines)
        return (demangle(name) if name else f"?? ({image.name}+{file_offset:#x})",)

    def _jit_frame(self, pid: int, address: int) -> str | None:
        """A name from /tmp/perf-PID.map (JIT runtimes write "START SIZE NAME" lines), re-read when it grows."""
        path = f"/tmp/perf-{pid}.map"
        try:
            size = os.stat(path).st_size
        except OSError:
            return None
        known = self._perf_maps.get(pid)
        if known is None or known[0] != size:
            entries = []
            with open(path, errors="replace") as perf_map:
                for line in perf_map:
                    parts = line.rstrip("\n").split(" ", 2)
                    if len(parts) == 3:
                        try:
                            entries.append((int(parts[0], 16), int(parts[1], 16), parts[2]))
                        except ValueError:
                            continue
            entries.sort()
            known = self._perf_maps[pid] = (size, [e[0] for e in entries], entries)
        i = bisect.bisect_right(known[1], address) - 1
        if i >= 0 and address < known[2][i][0] + known[2][i][1]:
            return known[2][i][2]
        return None

    def close(self) -> None:
        for server in self._lines.values():
            if server is not None:
                server.close()
        self._lines.clear()


def perf_map_environment(environ) -> dict:
    """The command's environment with the JIT runtimes asked to write /tmp/perf-PID.map,
    so that their frames get names (CPython 3.12+, Node.js, .NET; others ignore these)."""
    env = dict(environ)
    env.setdefault("PYTHONPERFSUPPORT", "1")
    env.setdefault("DOTNET_PerfMapEnabled", "3")
    if "--perf-basic-prof" not in env.get("NODE_OPTIONS", ""):
        # Interpreted functions get a frame (and a map entry) of their own too,
        # not only the ones V8 has compiled.
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --perf-basic-prof-only-functions"
                               " --interpreted-frames-native-stack").strip()
    return env
