"""The one ELF reader: ELF64 little-endian files (x86-64 Linux), with the standard library.

Used for a program's runtime (runtimes), the CPython executables the probe
reads frames of (stacks.cpython) and the symbols of captured stacks
(stacks.native). Reads what they need, no more: the header, program headers,
sections, the dynamic section's DT_NEEDED names and symbols, each as the raw
tuple of its struct.
Damaged files raise struct.error, IndexError or ValueError.
"""

from __future__ import annotations

import struct
from typing import Iterable

ELF_MAGIC = b"\x7fELF"
ELFCLASS64, ELFDATA2LSB = 2, 1
PT_LOAD, PT_INTERP, PT_NOTE, PT_PHDR = 1, 3, 4, 6
SHT_DYNAMIC, SHT_NOBITS, SHT_DYNSYM, SHT_GNU_HASH = 6, 8, 11, 0x6FFFFFF6
DT_NULL, DT_NEEDED = 0, 1
SHN_UNDEF, SHN_XINDEX = 0, 0xFFFF
STT_FUNC, STT_GNU_IFUNC = 2, 10

SEGMENT = struct.Struct("<IIQQQQQQ")    # Elf64_Phdr: type, flags, offset, vaddr, paddr, filesz, memsz, align
SECTION = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr: name, type, flags, addr, offset, size, link, info, align, entsize
SYMBOL = struct.Struct("<IBBHQQ")       # Elf64_Sym: name, info, other, shndx, value, size
DYN = struct.Struct("<qQ")              # Elf64_Dyn: tag, value


def is_elf64_le(data) -> bool:
    """An ELF file of the only kind this tracer's hosts run: ELFCLASS64, little-endian."""
    return data[:4] == ELF_MAGIC and data[4] == ELFCLASS64 and data[5] == ELFDATA2LSB


class Elf:
    """Reader over the bytes (usually mapped) of an ELF64 little-endian file.
    `sections` is empty when the file has no section headers it can read."""

    def __init__(self, data) -> None:
        self.data = data
        self.by_name: dict[str, tuple] = {}
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        if not shoff or shentsize != SECTION.size:
            self.sections = []
            return
        first = SECTION.unpack_from(data, shoff)
        if shnum == 0:              # extended numbering: the count is in section 0
            shnum = first[5]
        if shstrndx == SHN_XINDEX:
            shstrndx = first[6]
        self.sections = [SECTION.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
        names_offset = self.sections[shstrndx][4] if shstrndx < shnum else 0
        self.by_name = {self.string(names_offset, s[0]): s for s in self.sections}

    @property
    def entry(self) -> int:
        return struct.unpack_from("<Q", self.data, 0x18)[0]

    def segments(self) -> list[tuple]:
        """The program headers (SEGMENT tuples)."""
        phoff, = struct.unpack_from("<Q", self.data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", self.data, 0x36)
        return [SEGMENT.unpack_from(self.data, phoff + i * phentsize) for i in range(phnum)]

    def string(self, table_offset: int, index: int) -> str:
        start = table_offset + index
        end = self.data.find(b"\0", start)
        return self.data[start:end].decode("latin-1")

    def section(self, name: str) -> bytes | None:
        found = self.by_name.get(name)
        if found is None or found[1] == SHT_NOBITS:     # no bytes in the file
            return None
        return self.data[found[4]:found[4] + found[5]]

    def _of_type(self, sh_type: int):
        return next((s for s in self.sections if s[1] == sh_type), None)

    def needed(self) -> tuple:
        dynamic = self._of_type(SHT_DYNAMIC)
        if dynamic is None or dynamic[6] >= len(self.sections):
            return ()
        strtab = self.sections[dynamic[6]][4]
        names = []
        for offset in range(dynamic[4], dynamic[4] + dynamic[5], DYN.size):
            tag, value = DYN.unpack_from(self.data, offset)
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                names.append(self.string(strtab, value))
        return tuple(names)

    def exports(self, names: Iterable[str]) -> frozenset:
        """Which of names the dynamic symbol table defines."""
        return frozenset(self.symbols(names))

    def symbols(self, names: Iterable[str]) -> dict[str, int]:
        """The values of those of names the dynamic symbol table defines: by the
        GNU hash table where there is one (node exports ~70 000 symbols), else by a scan."""
        gnu_hash = self._of_type(SHT_GNU_HASH)
        dynsym = self.sections[gnu_hash[6]] if gnu_hash is not None else self._of_type(SHT_DYNSYM)
        if dynsym is None or dynsym[6] >= len(self.sections):
            return {}
        strtab = self.sections[dynsym[6]][4]
        if gnu_hash is not None:
            found = {n: self._gnu_lookup(gnu_hash[4], dynsym[4], strtab, n) for n in names}
            return {n: value for n, value in found.items() if value is not None}
        wanted, found = set(names), {}
        for offset in range(dynsym[4], dynsym[4] + dynsym[5], SYMBOL.size):
            st_name, _, _, shndx, value, _ = SYMBOL.unpack_from(self.data, offset)
            if shndx != SHN_UNDEF and self.string(strtab, st_name) in wanted:
                found[self.string(strtab, st_name)] = value
        return found

    def _gnu_lookup(self, table: int, dynsym: int, strtab: int, name: str) -> int | None:
        nbuckets, symoffset, bloom_size, _ = struct.unpack_from("<IIII", self.data, table)
        if not nbuckets:
            return None
        h = 5381
        for byte in name.encode():
            h = (h * 33 + byte) & 0xFFFFFFFF
        buckets = table + 16 + bloom_size * 8
        chains = buckets + nbuckets * 4
        index, = struct.unpack_from("<I", self.data, buckets + (h % nbuckets) * 4)
        if index < symoffset:
            return None
        while True:
            chained, = struct.unpack_from("<I", self.data, chains + (index - symoffset) * 4)
            if (chained | 1) == (h | 1):
                st_name, _, _, shndx, value, _ = SYMBOL.unpack_from(self.data, dynsym + index * SYMBOL.size)
                if shndx != SHN_UNDEF and self.string(strtab, st_name) == name:
                    return value
            if chained & 1:
                return None
            index += 1

    def read_virtual(self, address: int, size: int) -> bytes | None:
        """Bytes at a virtual address, through the section that holds it."""
        for s in self.sections:
            if s[1] != SHT_NOBITS and s[3] and s[3] <= address < s[3] + s[5]:
                start = s[4] + address - s[3]
                return self.data[start:start + size]
        return None
