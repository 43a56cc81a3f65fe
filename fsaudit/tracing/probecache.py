"""The compiled probe, cached: bcc's compile (about a second, and 150 MB of
LLVM) runs once per kernel, probe source and flags, not at every start.

A compiled probe (compiler.py's JSON) is kept in CACHE_DIR as
`probe-<key>.json`, key the SHA-256 of this format's version, fsaudit's
version, the kernel (release and build), the compiler flags and the probe's
source text as compiled (headers inlined): the same key means the same
program. The directory is $FSAUDIT_CACHE_DIR, else /var/cache/fsaudit for
root, else $XDG_CACHE_HOME/fsaudit (~/.cache/fsaudit). It is created 0700;
a directory or file that is a symbolic link, is another user's or is
writable by others is neither read nor written. A file is written as
fsaudit tells programs to (temporary file, fsync, rename, directory fsync),
0600, and checked when read (its digest, its key, the shape of every map
and instruction the loader patches): anything else is compiled again. When
nothing can be written there, the probe is compiled for each start and
tracing works as before. The newest KEEP files are kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

from .. import __version__
from .bpf import BPF_LD_IMM64, BPF_PSEUDO_MAP_FD, INSN, MAP_TYPES

FORMAT = 1
MAGIC = b"fsaudit-probe 1\n"
KEEP = 32
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])   # the directory `fsaudit` is imported from


class CompileError(Exception):
    """The probe did not compile (or bcc is missing); the message is one line."""


def cache_dir() -> Path:
    configured = os.environ.get("FSAUDIT_CACHE_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/fsaudit")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fsaudit"


def cache_key(source: bytes, cflags: list[str]) -> str:
    uname = os.uname()
    identity = json.dumps([FORMAT, __version__, uname.release, uname.version, uname.machine, cflags])
    return hashlib.sha256(identity.encode() + b"\0" + source).hexdigest()


def _private(st: os.stat_result, kind) -> bool:
    """Ours, of that kind (stat.S_ISDIR or S_ISREG), and writable by nobody else."""
    return kind(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _open_dir(path: Path, create: bool) -> int | None:
    """An fd of the cache directory, if it is private (see _private); created if asked."""
    if create:
        try:
            os.makedirs(path.parent, exist_ok=True)
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    if not _private(os.fstat(fd), stat.S_ISDIR):
        os.close(fd)
        return None
    return fd


def parse(blob: bytes, key: str) -> dict | None:
    """The compiled probe in a cache file, or None if the file is not one for key, intact."""
    if not blob.startswith(MAGIC):
        return None
    digest, _, body = blob[len(MAGIC):].partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        return None
    try:
        compiled = json.loads(body)
        if compiled.get("key") != key:
            return None
        tables = {t["name"]: t for t in compiled["tables"]}
        for table in tables.values():
            if table["type"] not in MAP_TYPES or not all(
                    isinstance(table[f], int) for f in ("key_size", "value_size", "max_entries", "flags")):
                return None
        for function in compiled["functions"]:
            code = function["code"] = base64.b64decode(function["code"], validate=True)
            if not code or len(code) % INSN.size:
                return None
            for index, table in function["maps"]:
                if table not in tables or not 0 <= index < len(code) // INSN.size - 1:
                    return None
                op, regs, _, _ = INSN.unpack_from(code, index * INSN.size)
                if op != BPF_LD_IMM64 or regs >> 4 != BPF_PSEUDO_MAP_FD:
                    return None
        if not isinstance(compiled["license"], str) or not isinstance(compiled["kern_version"], int):
            return None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return compiled


def _read(dir_fd: int, name: str, key: str) -> dict | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    with open(fd, "rb") as f:
        if not _private(os.fstat(f.fileno()), stat.S_ISREG):
            return None
        return parse(f.read(), key)


def _write(dir_fd: int, name: str, blob: bytes) -> bool:
    temp = f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        with open(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    except OSError:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except OSError:
            pass
        return False
    _prune(dir_fd)
    return True


def _prune(dir_fd: int) -> None:
    """Keep the KEEP newest compiled probes (other kernels' and sources' age out)."""
    try:
        names = [n for n in os.listdir(dir_fd) if n.startswith("probe-") and n.endswith(".json")]
        ages = sorted(names, key=lambda n: os.stat(n, dir_fd=dir_fd, follow_symlinks=False).st_mtime_ns)
        for name in ages[:-KEEP]:
            os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def run_compiler(source: bytes, cflags: list[str]) -> bytes:
    """compiler.py's JSON for source, from a process of its own (bcc and LLVM stay there)."""
    # This fsaudit's directory goes last on the child's path: found wherever this
    # one was (installed, editable, PYTHONPATH) and never ahead of the standard library.
    start = (f"import runpy, sys; sys.path.append({PACKAGE_ROOT!r}); "
             "runpy.run_module('fsaudit.tracing.compiler', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", start, *cflags], input=source, capture_output=True, close_fds=True)
    if done.returncode != 0:
        messages = done.stderr.decode(errors="replace").strip().splitlines()
        if len(messages) > 1:          # the compiler's own diagnostics, as bcc printed them
            sys.stderr.write("\n".join(messages[:-1]) + "\n")
        raise CompileError(messages[-1] if messages else f"the probe compiler exited with status {done.returncode}")
    return done.stdout


def compiled_probe(source: bytes, cflags: list[str]) -> tuple[dict, bool]:
    """(the compiled probe, whether it came from the cache): compiled and cached on a miss."""
    key = cache_key(source, cflags)
    name = f"probe-{key}.json"
    dir_fd = _open_dir(cache_dir(), create=True)
    try:
        cached = _read(dir_fd, name, key) if dir_fd is not None else None
        if cached is not None:
            return cached, True
        body = json.loads(run_compiler(source, cflags))
        body["key"] = key
        text = json.dumps(body).encode()
        blob = MAGIC + hashlib.sha256(text).hexdigest().encode() + b"\n" + text
        if dir_fd is not None:
            _write(dir_fd, name, blob)
        compiled = parse(blob, key)
        if compiled is None:
            raise CompileError("the probe compiler's output is not a compiled probe")
        return compiled, False
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def cache_state(source: bytes, cflags: list[str]) -> tuple[Path, bool, bool]:
    """For `fsaudit doctor`: (the cache directory, whether fsaudit can write it,
    whether it holds this probe compiled)."""
    path = cache_dir()
    dir_fd = _open_dir(path, create=False)
    if dir_fd is None:
        # Creatable: it does not exist and its nearest existing ancestor is a directory fsaudit may write.
        if os.path.lexists(path):
            return path, False, False
        parent = next((p for p in path.parents if os.path.lexists(p)), None)
        return path, parent is not None and os.path.isdir(parent) and os.access(parent, os.W_OK), False
    try:
        key = cache_key(source, cflags)
        return path, os.access(f"/proc/self/fd/{dir_fd}", os.W_OK), _read(dir_fd, f"probe-{key}.json", key) is not None
    finally:
        os.close(dir_fd)
