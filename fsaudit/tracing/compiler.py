"""Compile the probe with bcc, in a process of its own: `python -m fsaudit.tracing.compiler CFLAGS... < SOURCE`.

Writes to stdout, as JSON, what bpf.Program needs to load it without bcc:
each map's definition (as the kernel created it for bcc) with bcc's
description of its key and value types, and each function's instructions
with the places that name a map. The tracer runs this only when
probecache.py has no compiled probe for this kernel, source and flags: bcc
and its LLVM (about 150 MB) then leave with this process. Nothing is loaded
into the kernel or attached here.

Exit status 0; 1 when the source does not compile (bcc printed why on
stderr); 2 when bcc cannot be imported.
"""

from __future__ import annotations

import base64
import ctypes
import json
import sys

from .bpf import BPF_LD_IMM64, BPF_PSEUDO_MAP_FD, INSN, MAP_TYPES, map_info

EXIT_COMPILE_FAILED, EXIT_NO_BCC = 1, 2


def compile_probe(source: bytes, cflags: list[str]) -> dict:
    """The compiled probe; RuntimeError with a line saying why it is not."""
    from bcc import lib

    lib.bpf_num_tables.restype, lib.bpf_num_tables.argtypes = ctypes.c_size_t, [ctypes.c_void_p]
    lib.bpf_table_name.restype, lib.bpf_table_name.argtypes = ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_ulonglong]
    flags = (ctypes.c_char_p * len(cflags))(*(f.encode() for f in cflags))
    # What bcc's BPF(text=..., cflags=...) does first (allow_rlimit true, no device), without
    # its automatic loading and attaching of the programs.
    module = lib.bpf_module_create_c_from_string(source, 0, flags, len(cflags), True, None)
    if not module:
        raise RuntimeError("bcc could not compile the probe")
    tables, by_fd = [], {}
    for index in range(lib.bpf_num_tables(module)):
        name = lib.bpf_table_name(module, index)
        fd = lib.bpf_table_fd(module, name)
        by_fd[fd] = name.decode()
        info = map_info(fd)
        if info["type"] not in MAP_TYPES:
            raise RuntimeError(f"map {name.decode()} is of a type (BPF map type {info['type']}) bpf.py does not load")
        tables.append({"name": name.decode(), **info,
                       "key_desc": (lib.bpf_table_key_desc(module, name) or b"").decode(),
                       "leaf_desc": (lib.bpf_table_leaf_desc(module, name) or b"").decode()})
    functions = []
    for index in range(lib.bpf_num_functions(module)):
        name = lib.bpf_function_name(module, index)
        code = ctypes.string_at(lib.bpf_function_start(module, name), lib.bpf_function_size(module, name))
        sites = []
        for at in range(0, len(code), INSN.size):
            op, regs, _, imm = INSN.unpack_from(code, at)
            if op == BPF_LD_IMM64 and regs >> 4:
                if regs >> 4 != BPF_PSEUDO_MAP_FD or imm not in by_fd:
                    raise RuntimeError(f"{name.decode()}: a 64-bit load at {at // 8} the loader cannot relocate")
                sites.append([at // INSN.size, by_fd[imm]])
        functions.append({"name": name.decode(), "code": base64.b64encode(code).decode(), "maps": sites})
    return {"license": lib.bpf_module_license(module).decode(), "kern_version": lib.bpf_module_kern_version(module),
            "tables": tables, "functions": functions}


def main() -> int:
    try:
        import bcc  # noqa: F401  (the import that fails when bcc is missing or broken)
    except ImportError as exc:
        print(f"cannot import bcc ({exc}); `fsaudit doctor` says how to install it", file=sys.stderr)
        return EXIT_NO_BCC
    try:
        compiled = compile_probe(sys.stdin.buffer.read(), sys.argv[1:])
    except Exception as exc:   # bcc raises bare Exception; it printed the compiler's messages
        print(f"compiling the BPF program failed ({exc}); run `fsaudit doctor`", file=sys.stderr)
        return EXIT_COMPILE_FAILED
    sys.stdout.write(json.dumps(compiled))
    return 0


if __name__ == "__main__":
    sys.exit(main())
