"""Which language runtime a traced process runs, from its executable and libraries.

Names: cpython, go, jvm, node, dotnet, mono, rust, c (a native program on libc
with none of the others' signatures). Signatures, strongest first:

- dotnet: libcoreclr.so, libclrjit.so or libSystem.Native.so mapped (CoreCLR),
  or the exe exports DotNetRuntimeDebugHeader (NativeAOT). Version from the
  directory of libcoreclr.so (.../Microsoft.NETCore.App/7.0.5/).
- mono: libmonosgen-2.0.so or libmono-2.0.so mapped, or the exe exports mono_jit_init.
- jvm: libjvm.so mapped (the java launcher dlopens it). Version from the JDK's
  `release` file, else from a java-NN directory name.
- node: libnode.so mapped, or the exe exports napi_module_register.
- cpython: libpython3.X.so mapped, the exe exports _PyRuntime or has a .PyRuntime
  section, or is named pythonX.Y. Version X.Y from those names.
- go: a .go.buildinfo section starting "\\xff Go buildinf:" (version inside, Go
  1.13+) or a .note.go.buildid section.
- rust: "rustc version" in the .comment section (version inside).

Only ELF is read (x86-64 Linux, through elf.py). Shared libraries
are mapped by the dynamic loader after exec, so the caller collects them from
the process's mmap calls (or /proc/PID/maps for a process that was already
running) and asks again when a signature library shows up late (dlopen).
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import struct
from dataclasses import dataclass
from typing import Iterable

from .elf import ELF_MAGIC, Elf, is_elf64_le

GO_BUILDINFO_MAGIC = b"\xff Go buildinf:"
# Exported symbols that name a runtime; looked up one by one in the exe's dynamic symbol table.
SIGNATURE_SYMBOLS = ("_PyRuntime", "napi_module_register", "mono_jit_init", "DotNetRuntimeDebugHeader")

CORECLR_LIBRARIES = ("libcoreclr.so", "libclrjit.so", "libSystem.Native.so")
_PYTHON_NAME = re.compile(r"(?:lib)?python(\d+(?:\.\d+)?)")
_SIGNATURE_LIBRARY = re.compile(
    r"^(libcoreclr\.so|libclrjit\.so|libSystem\.Native\.so|libmonosgen-2\.0\.so.*|libmono-2\.0\.so.*"
    r"|libjvm\.so|libnode\.so.*|libpython\d.*\.so.*)$")
_VERSION_DIR = re.compile(r"^\d+\.\d+\.\d+")
_JAVA_DIR = re.compile(r"(?:java|jdk|jre)-?(\d+)")


@dataclass(frozen=True)
class ElfFacts:
    """What one executable's ELF file says about its runtime."""

    go: bool = False
    go_version: str | None = None
    rustc_version: str | None = None    # "rustc version X" in .comment: a Rust program
    py_runtime_section: bool = False
    exports: frozenset = frozenset()    # the SIGNATURE_SYMBOLS it defines
    needed: tuple = ()                  # DT_NEEDED library names


@dataclass(frozen=True)
class Runtime:
    name: str
    version: str | None
    signature: str      # what identified it, for the event log reader

    def fields(self) -> dict:
        return {"name": self.name, "version": self.version, "signature": self.signature}


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _go_version(elf: Elf, buildinfo: bytes) -> str | None:
    """The Go version in a .go.buildinfo header: inline since Go 1.18 (flag 2),
    before that a pointer to a Go string header."""
    if len(buildinfo) < 32:
        return None
    ptrsize, flags = buildinfo[14], buildinfo[15]
    try:
        if flags & 2:
            length, pos = _uvarint(buildinfo, 32)
            return buildinfo[pos:pos + length].decode() or None
        if flags & 1 or ptrsize not in (4, 8):      # big-endian: not an x86-64 binary
            return None
        fmt = "<Q" if ptrsize == 8 else "<I"
        pointer, = struct.unpack_from(fmt, buildinfo, 16)
        header = elf.read_virtual(pointer, 2 * ptrsize)
        if not header or len(header) < 2 * ptrsize:
            return None
        data, = struct.unpack_from(fmt, header, 0)
        length, = struct.unpack_from(fmt, header, ptrsize)
        text = elf.read_virtual(data, length)
        return text.decode() if text else None
    except (IndexError, struct.error, UnicodeDecodeError):
        return None


def _parse(data) -> ElfFacts:
    elf = Elf(data)
    if not elf.sections:
        return ElfFacts()
    buildinfo = elf.section(".go.buildinfo")
    go_version = _go_version(elf, buildinfo) if buildinfo and buildinfo.startswith(GO_BUILDINFO_MAGIC) else None
    go = bool(buildinfo and buildinfo.startswith(GO_BUILDINFO_MAGIC)) or ".note.go.buildid" in elf.by_name
    comment = elf.section(".comment") or b""
    rustc = None
    at = comment.find(b"rustc version ")
    if at >= 0:
        rustc = comment[at + 14:].split(b"\0", 1)[0].split(b" ", 1)[0].decode("latin-1")
    return ElfFacts(go=go, go_version=go_version, rustc_version=rustc,
                    py_runtime_section=".PyRuntime" in elf.by_name,
                    exports=elf.exports(SIGNATURE_SYMBOLS), needed=elf.needed())


_cache: dict[tuple, ElfFacts | None] = {}
_CACHE_MAX = 512


def read_elf(path: str) -> ElfFacts | None:
    """The runtime facts of an ELF executable, None when path is not a readable ELF
    file. Cached per file version (device, inode, size, mtime): each exec of an
    already-seen program costs one open and fstat."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key in _cache:
            return _cache[key]
        facts = None
        if st.st_size >= 64:
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as data:
                if is_elf64_le(data):
                    try:
                        facts = _parse(data)
                    except (struct.error, IndexError, ValueError):
                        facts = ElfFacts()   # a damaged ELF: still a native program
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = facts
        return facts
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def is_signature_library(path: str) -> bool:
    return _SIGNATURE_LIBRARY.match(os.path.basename(path)) is not None


def libraries_from_maps(text: str) -> list[str]:
    """The signature libraries a /proc/PID/maps text shows mapped, once each."""
    found: list[str] = []
    for line in text.splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[5].startswith("/"):
            path = fields[5].removesuffix(" (deleted)")
            if path not in found and is_signature_library(path):
                found.append(path)
    return found


def _jvm_version(libjvm: str) -> str | None:
    # .../java-17-openjdk-amd64/lib/server/libjvm.so: the JDK root holds `release`.
    home = os.path.dirname(os.path.dirname(os.path.dirname(libjvm)))
    try:
        with open(os.path.join(home, "release"), encoding="utf-8", errors="replace") as release:
            for line in release:
                if line.startswith("JAVA_VERSION="):
                    return line.split("=", 1)[1].strip().strip('"') or None
    except OSError:
        pass
    match = _JAVA_DIR.search(os.path.basename(home))
    return match.group(1) if match else None


def _dotnet_version(library: str) -> str | None:
    directory = os.path.basename(os.path.dirname(library))
    return directory if _VERSION_DIR.match(directory) else None


def _python_version(name: str) -> str | None:
    match = _PYTHON_NAME.match(name)
    return match.group(1) if match and "." in match.group(1) else None


def classify(exe: str | None, facts: ElfFacts | None, libraries: Iterable[str] = ()) -> Runtime | None:
    """The runtime of a process image: its executable's path and ELF facts, and
    the libraries it maps. None when nothing could be read."""
    libraries = list(libraries)
    if facts is not None:
        libraries += facts.needed
    by_name = {os.path.basename(path): path for path in libraries}

    def library(*prefixes: str) -> str | None:
        return next((path for name, path in by_name.items() if name.startswith(prefixes)), None)

    exports = facts.exports if facts else frozenset()
    coreclr = library(*CORECLR_LIBRARIES)
    if coreclr:
        main = by_name.get("libcoreclr.so", coreclr)
        return Runtime("dotnet", _dotnet_version(main), f"{os.path.basename(coreclr)} mapped")
    if "DotNetRuntimeDebugHeader" in exports:
        return Runtime("dotnet", None, "exe exports DotNetRuntimeDebugHeader (NativeAOT)")
    mono = library("libmonosgen-2.0.so", "libmono-2.0.so")
    if mono or "mono_jit_init" in exports:
        return Runtime("mono", None, f"{os.path.basename(mono)} mapped" if mono else "exe exports mono_jit_init")
    jvm = by_name.get("libjvm.so")
    if jvm:
        return Runtime("jvm", _jvm_version(jvm), "libjvm.so mapped")
    node = library("libnode.so")
    if node or "napi_module_register" in exports:
        return Runtime("node", None, f"{os.path.basename(node)} mapped" if node else "exe exports napi_module_register")
    exe_name = os.path.basename(exe or "")
    libpython = library("libpython")
    if libpython:
        return Runtime("cpython", _python_version(os.path.basename(libpython)) or _python_version(exe_name),
                       f"{os.path.basename(libpython)} mapped")
    if facts is None:
        return None
    if "_PyRuntime" in exports or facts.py_runtime_section or _python_version(exe_name):
        what = "exports _PyRuntime" if "_PyRuntime" in exports else "is CPython by name or section"
        return Runtime("cpython", _python_version(exe_name), f"exe {what}")
    if facts.go:
        return Runtime("go", facts.go_version, "Go build info in the exe")
    if facts.rustc_version:
        return Runtime("rust", facts.rustc_version, "rustc version in the exe's .comment")
    return Runtime("c", None, "native ELF with no runtime signature")


def exe_of_exec(pid: int, path: str) -> str | None:
    """The ELF file an exec started. The exec's path itself, unless it is a
    script: then the interpreter, from /proc/PID/exe while the process lives,
    else from the script's #! line."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        head = b""
    if head.startswith(ELF_MAGIC):
        return os.path.realpath(path)   # /usr/bin/python3 -> python3.11: the name has the version
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        pass
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    if not words:
        return None
    interpreter = os.fsdecode(words[0])
    if os.path.basename(interpreter) == "env" and len(words) > 1:
        interpreter = shutil.which(os.fsdecode(words[1]))
    return os.path.realpath(interpreter) if interpreter else None


class Image:
    """One exec'd program image of a process, and what has been announced about it.

    The runtime is decided once the image runs its own code (the caller says
    when); a signature library mapped after that (dlopen) decides again."""

    def __init__(self, exe: str | None, facts: ElfFacts | None, libraries: list[str] | None = None) -> None:
        self.exe = exe
        self.facts = facts
        self.libraries = libraries or []
        self.announced: Runtime | None = None
        self.decided = False

    @classmethod
    def at_exec(cls, pid: int, path: str) -> Image:
        exe = exe_of_exec(pid, path)
        return cls(exe, read_elf(exe) if exe else None)

    @classmethod
    def running(cls, pid: int) -> Image:
        """A process that was running before tracing began: all its libraries are mapped."""
        try:
            exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        except OSError:
            return cls(None, None)
        try:
            with open(f"/proc/{pid}/maps") as maps:
                libraries = libraries_from_maps(maps.read())
        except OSError:
            libraries = []
        facts = read_elf(f"/proc/{pid}/exe") or read_elf(exe)
        return cls(exe, facts, libraries)

    def copy(self) -> Image:
        """The same image in a forked child (later dlopens are the child's own)."""
        image = Image(self.exe, self.facts, list(self.libraries))
        image.announced, image.decided = self.announced, self.decided
        return image

    def library_mapped(self, path: str) -> bool:
        """Record a mapped library; True when it is a new signature library."""
        if path in self.libraries or not is_signature_library(path):
            return False
        self.libraries.append(path)
        return True

    def decide(self) -> Runtime | None:
        """The runtime when it is new or changed since the last announcement, else None."""
        self.decided = True
        runtime = classify(self.exe, self.facts, self.libraries)
        if runtime is None or runtime == self.announced:
            return None
        self.announced = runtime
        return runtime


def fingerprint_pid(pid: int) -> Runtime | None:
    """The runtime of a running process (its exe and /proc/PID/maps)."""
    image = Image.running(pid)
    return classify(image.exe, image.facts, image.libraries)
