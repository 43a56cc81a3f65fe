"""The probe loaded and attached without bcc: bpf(2) and perf_event_open(2) through ctypes.

bcc compiles the probe (compiler.py, in a process of its own); what it
produced, its maps' definitions and its programs' instructions (probecache.py
keeps them), is loaded here: maps created, their fds patched into the
instructions that name them, programs loaded and attached as bcc would have
attached them. The tracer process so never maps bcc's LLVM (about 150 MB).
Only what the probe uses: hash, array, LRU and ring buffer maps; raw
tracepoints, tracepoints and uprobes.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import struct
import subprocess
from pathlib import Path
from typing import Iterable, Iterator

from .elf import PT_LOAD, Elf

# <linux/bpf.h>
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY = 0, 1, 2, 3, 4
BPF_PROG_LOAD, BPF_OBJ_GET_INFO_BY_FD, BPF_RAW_TRACEPOINT_OPEN, BPF_LINK_CREATE = 5, 15, 17, 28
BPF_TRACE_UPROBE_MULTI = 48             # enum bpf_attach_type (kernel >= 6.6)
BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_TRACEPOINT, BPF_PROG_TYPE_RAW_TRACEPOINT = 2, 5, 17
BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_HASH = 1, 2, 6, 9
BPF_MAP_TYPE_RINGBUF = 27
MAP_TYPES = {BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_HASH,
             BPF_MAP_TYPE_RINGBUF}
BPF_LD_IMM64, BPF_PSEUDO_MAP_FD = 0x18, 1
BPF_OBJ_NAME_LEN = 16
INSN = struct.Struct("<BBhi")           # struct bpf_insn: code, dst_reg:4 | src_reg:4, off, imm
# <linux/perf_event.h>
PERF_TYPE_TRACEPOINT = 2
PERF_FLAG_FD_CLOEXEC = 8
PERF_EVENT_IOC_ENABLE = 0x2400          # _IO('$', 0)
PERF_EVENT_IOC_SET_BPF = 0x40042408     # _IOW('$', 8, __u32)
SYS_PERF_EVENT_OPEN, SYS_BPF = 298, 321   # x86-64
UPROBE_PMU = "/sys/bus/event_source/devices/uprobe/type"
TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
PROG_LOAD_ATTEMPTS = 5
LOG_SIZE = 1 << 20                      # the verifier's log, asked for only when a load fails

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class BpfError(Exception):
    """A map, program or attachment the kernel refused; the message says which and why."""


def _sys(number: int, *args) -> int:
    ret = _libc.syscall(number, *args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def bpf(cmd: int, attr: ctypes.Array) -> int:
    return _sys(SYS_BPF, ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))


def _attr(*fields: tuple[str, object]) -> ctypes.Array:
    """A union bpf_attr (zero beyond the fields given), from (struct format, value) pairs in order."""
    packed = b"".join(struct.pack("<" + fmt, value) for fmt, value in fields)
    return ctypes.create_string_buffer(packed, 128)


def _name(name: str) -> bytes:
    # The kernel takes [A-Za-z0-9_.] and 15 bytes, as bcc cuts them.
    return name.encode()[:BPF_OBJ_NAME_LEN - 1].ljust(BPF_OBJ_NAME_LEN, b"\0")


def map_info(fd: int) -> dict:
    """What the kernel says a map is (struct bpf_map_info's first fields)."""
    info = ctypes.create_string_buffer(80)
    bpf(BPF_OBJ_GET_INFO_BY_FD, _attr(("I", fd), ("I", ctypes.sizeof(info)), ("Q", ctypes.addressof(info))))
    map_type, _, key_size, value_size, max_entries, flags = struct.unpack_from("<6I", info)
    return {"type": map_type, "key_size": key_size, "value_size": value_size, "max_entries": max_entries,
            "flags": flags}


_SCALARS = {
    "char": ctypes.c_char, "signed char": ctypes.c_byte, "unsigned char": ctypes.c_ubyte,
    "short": ctypes.c_short, "unsigned short": ctypes.c_ushort, "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint, "long": ctypes.c_long, "unsigned long": ctypes.c_ulong,
    "long long": ctypes.c_longlong, "unsigned long long": ctypes.c_ulonglong, "_Bool": ctypes.c_bool,
}


def ctype(desc) -> type:
    """The ctypes type of bcc's JSON description of a key or value type (bcc's own
    decoding, BPF._decode_table_type, for the types a probe's maps use)."""
    if isinstance(desc, str):
        return _SCALARS[desc]
    name, members = desc[0], desc[1]
    kind = desc[2] if len(desc) > 2 else "struct"
    fields, anonymous = [], []
    for member in members:
        if len(member) == 2:
            fields.append((member[0], ctype(member[1])))
        elif isinstance(member[2], list):
            fields.append((member[0], ctype(member[1]) * member[2][0]))
        elif isinstance(member[2], int):
            fields.append((member[0], ctype(member[1]), member[2]))      # a bit-field
        else:
            field_name = member[0] or f"__anon{len(anonymous)}"
            if not member[0]:
                anonymous.append(field_name)
            fields.append((field_name, ctype(member)))
    base = ctypes.Union if kind == "union" else ctypes.Structure
    body = {"_fields_": fields, "_anonymous_": anonymous}
    if kind == "struct_packed":
        body["_pack_"] = 1
    return type(name, (base,), body)


class Table:
    """One map, used as bcc's tables are: keys and values of its ctypes Key and Leaf."""

    def __init__(self, name: str, fd: int, definition: dict) -> None:
        self.name, self.map_fd, self.type = name, fd, definition["type"]
        self.Key = ctype(json.loads(definition["key_desc"])) if definition["key_desc"] else None
        self.Leaf = ctype(json.loads(definition["leaf_desc"])) if definition["leaf_desc"] else None

    def _elem(self, cmd: int, key, value=None, flags: int = 0) -> int:
        if value is not None and self.type == BPF_MAP_TYPE_PERCPU_ARRAY:
            raise TypeError(f"{self.name}: a value per CPU, which user space does not read")
        return bpf(cmd, _attr(("I", self.map_fd), ("I", 0), ("Q", ctypes.addressof(key)),
                              ("Q", ctypes.addressof(value) if value is not None else 0), ("Q", flags)))

    def get(self, key, default=None):
        value = self.Leaf()
        try:
            self._elem(BPF_MAP_LOOKUP_ELEM, key, value)
        except FileNotFoundError:
            return default
        return value

    def __getitem__(self, key):
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value) -> None:
        self._elem(BPF_MAP_UPDATE_ELEM, key, value)

    def __delitem__(self, key) -> None:
        try:
            self._elem(BPF_MAP_DELETE_ELEM, key)
        except FileNotFoundError:
            raise KeyError(key) from None

    def pop(self, key, default=None):
        try:
            self.__delitem__(key)
        except KeyError:
            return default
        return None

    def keys(self) -> Iterator:
        key = None
        while True:
            following = self.Key()
            try:
                bpf(BPF_MAP_GET_NEXT_KEY, _attr(("I", self.map_fd), ("I", 0),
                                                ("Q", ctypes.addressof(key) if key is not None else 0),
                                                ("Q", ctypes.addressof(following))))
            except FileNotFoundError:
                return
            yield following
            key = following

    def items(self) -> list[tuple]:
        """(key, value) of every entry (those deleted meanwhile left out)."""
        return [(key, value) for key in list(self.keys()) if (value := self.get(key)) is not None]

    def clear(self) -> None:
        for key in list(self.keys()):
            self.pop(key)

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())


def tracefs_event_id(category: str, event: str) -> int:
    for root in TRACEFS_ROOTS:
        try:
            return int(Path(f"{root}/events/{category}/{event}/id").read_text())
        except OSError:
            continue
    raise BpfError(f"tracepoint {category}:{event} not found in tracefs")


def _perf_event_open(event_type: int, config: int, config1: int = 0, config2: int = 0) -> int:
    """A perf event counting on CPU 0 for every process (a BPF program attached
    to it runs on every CPU), as bcc opens them."""
    # struct perf_event_attr: type, size, config, sample_period, sample_type,
    # read_format, flag bits, wakeup_events, bp_type, config1, config2 (then zeros).
    size = 128
    attr = ctypes.create_string_buffer(struct.pack("<IIQQQQQIIQQ", event_type, size, config, 1, 0, 0, 0, 1, 0,
                                                   config1, config2), size)
    return _sys(SYS_PERF_EVENT_OPEN, ctypes.byref(attr), ctypes.c_int(-1), ctypes.c_int(0), ctypes.c_int(-1),
                ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC))


def libc_path() -> str:
    """The C library this process runs (the system's, which bcc's `name="c"` finds too)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split(maxsplit=5)[-1].strip()
            if os.path.basename(path).startswith("libc.so"):
                return path
    raise BpfError("no C library mapped in this process")


def _first_instruction_keeps_arguments(code: bytes) -> int:
    """The length of code's first x86-64 instruction if it is one that leaves
    every argument register as it was (endbr64, a push of a register), else 0."""
    if code[:4] == b"\xf3\x0f\x1e\xfa":                 # endbr64
        return 4
    if code[:1] and 0x50 <= code[0] <= 0x57:              # push %rax..%rdi
        return 1
    if code[:1] == b"\x41" and 0x50 <= code[1] <= 0x57:  # push %r8..%r15
        return 2
    return 0


def uprobe_offsets(path: str, symbols: Iterable[str]) -> dict[str, int]:
    """Where to probe each of symbols (exported functions) of the ELF file at
    path, as a file offset (what a uprobe takes): its address less its loadable
    segment's bias, past its first instruction when that leaves the argument
    registers alone (all the stdio probes read). The kernel refuses a second
    uprobe at one instruction with another reference counter offset, and bcc
    0.26's attach_uprobe passes an arbitrary one (its Python gives the C
    function six arguments of seven): a bcc tool on the function's entry, an
    fsaudit that loads through bcc included, would make attaching fail."""
    with open(path, "rb") as f:
        data = f.read()
    elf = Elf(data)
    offsets = {}
    for name, address in elf.symbols(symbols).items():
        for p_type, _, offset, vaddr, _, filesz, _, _ in elf.segments():
            if p_type == PT_LOAD and vaddr <= address < vaddr + filesz:
                at = address - vaddr + offset
                offsets[name] = at + _first_instruction_keeps_arguments(data[at:at + 4])
    return offsets


class Program:
    """A compiled probe (probecache's dict) loaded into the kernel: its maps
    created, the programs named like bcc's auto-attached ones (raw_tracepoint__NAME,
    tracepoint__CATEGORY__NAME) loaded and attached; the others by load() and attach_*().
    close() detaches and unloads."""

    def __init__(self, compiled: dict) -> None:
        self._compiled = compiled
        self._functions = {f["name"]: f for f in compiled["functions"]}
        self._fds: list[int] = []          # maps and programs
        self._perf_fds: list[int] = []     # attached perf events
        self._links: list[int] = []        # raw tracepoint attachments
        self._uprobe_links: list[int] = []
        self._loaded: dict[tuple[str, int], int] = {}
        self.tables: dict[str, Table] = {}
        try:
            for definition in compiled["tables"]:
                self.tables[definition["name"]] = Table(definition["name"], self._create_map(definition), definition)
            for name in self._functions:
                if name.startswith("raw_tracepoint__"):
                    self.attach_raw_tracepoint(name[len("raw_tracepoint__"):], name)
                elif name.startswith("tracepoint__"):
                    category, _, event = name[len("tracepoint__"):].partition("__")
                    self.attach_tracepoint(category, event, name)
        except BaseException:
            self.close()
            raise

    def __getitem__(self, name: str | bytes) -> Table:
        return self.tables[name.decode() if isinstance(name, bytes) else name]

    def _create_map(self, d: dict) -> int:
        try:
            fd = bpf(BPF_MAP_CREATE, _attr(("I", d["type"]), ("I", d["key_size"]), ("I", d["value_size"]),
                                           ("I", d["max_entries"]), ("I", d["flags"]), ("I", 0), ("I", 0),
                                           ("16s", _name(d["name"]))))
        except OSError as exc:
            raise BpfError(f"creating map {d['name']} failed ({exc.strerror})") from None
        self._fds.append(fd)
        return fd

    def load(self, name: str, prog_type: int, attach_type: int = 0) -> int:
        """The fd of the loaded program `name` (loaded once per attach type: the
        kernel checks some attachments against the type it was loaded for)."""
        if (name, attach_type) in self._loaded:
            return self._loaded[name, attach_type]
        function = self._functions[name]
        code = bytearray(function["code"])
        for index, table in function["maps"]:
            # ld_imm64 of a map: the map's fd in the first half's imm, as bcc loads it.
            INSN.pack_into(code, index * 8, BPF_LD_IMM64, BPF_PSEUDO_MAP_FD << 4 | code[index * 8 + 1] & 0x0F,
                           0, self.tables[table].map_fd)
        insns = ctypes.create_string_buffer(bytes(code), len(code))
        license = ctypes.create_string_buffer(self._compiled["license"].encode())

        def attempt(log) -> int:
            # The verifier can answer EAGAIN when it is interrupted (seen here while other
            # probes loaded); libbpf tries a load 5 times for it, and so do we.
            for tries_left in reversed(range(PROG_LOAD_ATTEMPTS)):
                try:
                    return load_once(log)
                except OSError as exc:
                    if exc.errno != errno.EAGAIN or not tries_left:
                        raise

        def load_once(log) -> int:
            return bpf(BPF_PROG_LOAD, _attr(
                ("I", prog_type), ("I", len(code) // 8), ("Q", ctypes.addressof(insns)),
                ("Q", ctypes.addressof(license)), ("I", 1 if log is not None else 0),
                ("I", ctypes.sizeof(log) if log is not None else 0),
                ("Q", ctypes.addressof(log) if log is not None else 0), ("I", self._compiled["kern_version"]),
                ("I", 0), ("16s", _name(name)), ("I", 0), ("I", attach_type)))
        try:
            fd = attempt(None)
        except OSError as first:
            log = ctypes.create_string_buffer(LOG_SIZE)
            try:                    # again, for the verifier's reasons
                fd = attempt(log)
            except OSError:
                lines = log.value.decode(errors="replace").strip().splitlines()
                raise BpfError(f"loading {name} failed ({first.strerror})"
                               + (f": {lines[-1]}" if lines else "")) from None
        self._fds.append(fd)
        self._loaded[name, attach_type] = fd
        return fd

    def attach_raw_tracepoint(self, tracepoint: str, name: str) -> int:
        """Attach program `name` to a raw tracepoint; the fd that holds it attached."""
        prog = self.load(name, BPF_PROG_TYPE_RAW_TRACEPOINT)
        event = ctypes.create_string_buffer(tracepoint.encode())
        try:
            fd = bpf(BPF_RAW_TRACEPOINT_OPEN, _attr(("Q", ctypes.addressof(event)), ("I", prog)))
        except OSError as exc:
            raise BpfError(f"attaching {name} to raw tracepoint {tracepoint} failed ({exc.strerror})") from None
        self._links.append(fd)
        return fd

    def attach_tracepoint(self, category: str, event: str, name: str) -> None:
        prog = self.load(name, BPF_PROG_TYPE_TRACEPOINT)
        self._attach_perf(prog, f"tracepoint {category}:{event}",
                          lambda: _perf_event_open(PERF_TYPE_TRACEPOINT, tracefs_event_id(category, event)))

    def attach_uprobe(self, path: str, offset: int, name: str) -> None:
        """Run program `name` whenever any process executes the instruction at
        file offset `offset` of the ELF file at path: by a uprobe_multi link
        where the kernel has them (6.6), whose detach waits for no other;
        else by a perf event of the uprobe PMU, as bcc does."""
        where = ctypes.create_string_buffer(os.fsencode(path))
        offsets = (ctypes.c_uint64 * 1)(offset)
        try:
            prog = self.load(name, BPF_PROG_TYPE_KPROBE, BPF_TRACE_UPROBE_MULTI)
            # link_create: prog_fd, target_fd, attach_type, flags, then uprobe_multi's
            # path, offsets, ref_ctr_offsets, cookies, cnt, flags, pid (0: every process).
            self._uprobe_links.append(bpf(BPF_LINK_CREATE, _attr(
                ("I", prog), ("I", 0), ("I", BPF_TRACE_UPROBE_MULTI), ("I", 0), ("Q", ctypes.addressof(where)),
                ("Q", ctypes.addressof(offsets)), ("Q", 0), ("Q", 0), ("I", 1), ("I", 0), ("I", 0))))
            return
        except (OSError, BpfError):
            pass            # an older kernel
        prog = self.load(name, BPF_PROG_TYPE_KPROBE)
        try:
            pmu = int(Path(UPROBE_PMU).read_text())
        except (OSError, ValueError):
            raise BpfError(f"no uprobe PMU ({UPROBE_PMU})") from None
        try:
            self._attach_perf(prog, f"uprobe {path}+{offset:#x}",
                              lambda: _perf_event_open(pmu, 0, ctypes.addressof(where), offset))
        except BpfError as exc:
            # The kernel refuses two uprobes at one place with different reference
            # counter offsets (see uprobe_offsets).
            raise BpfError(f"{exc}; is a bcc tool, or an fsaudit that loads through bcc, tracing it too?"
                           if "Invalid argument" in str(exc) else str(exc)) from None

    def _attach_perf(self, prog: int, what: str, open_event) -> None:
        try:
            fd = open_event()
        except OSError as exc:
            raise BpfError(f"opening {what} failed ({exc.strerror})") from None
        self._perf_fds.append(fd)
        try:
            fcntl.ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog)
            fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
        except OSError as exc:
            raise BpfError(f"attaching to {what} failed ({exc.strerror})") from None

    def detach(self) -> None:
        """Detach the programs whose detach waits, without waiting: closing a perf
        event waits for the kernel's tracepoint grace period (40-80 ms here, one
        after the other: the kernel holds a lock across it), a uprobe link for one
        of its own (20-40 ms). A process of ours holds their last references and
        drops them as it exits, after ours are closed: the wait is its exit's, not
        fsaudit's. Once the traced map is empty these programs only return. It is
        not our child (setsid --fork: its parent exits at once), so attaching to a
        process that traced in-process (the API) never adopts it."""
        held, self._perf_fds, self._uprobe_links = self._perf_fds + self._uprobe_links, [], []
        if not held:
            return
        try:
            holder = subprocess.Popen(["setsid", "--fork", "sh", "-c", "read _"], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=held)
            holder.wait()      # forked: the fds are held by its child now
        except OSError:        # cannot fork (a process limit) or no setsid: wait here instead
            holder = None
        for fd in held:
            os.close(fd)
        if holder:
            holder.stdin.close()   # the read ends: the holder exits, closing the last references

    def close(self) -> None:
        """Detach everything, then unload."""
        self.detach()
        for fd in self._links:
            os.close(fd)
        for fd in self._fds:
            os.close(fd)
        self._links, self._fds, self._loaded = [], [], {}
