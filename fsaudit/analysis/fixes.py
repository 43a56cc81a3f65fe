"""Fix text per rule and runtime, and the known runtime bugs that explain findings.

A finding's fix is FIXES[code][runtime] when its process's runtime has one,
else the rule's own (generic) fix, which is also what C programs get. Runtime
names are those fsaudit.tracing.runtimes gives (read from the runtime events:
analysis does not import tracing; tests/test_rule_catalogue.py checks the keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PY_DIR_SYNC = "fd = os.open(dir, os.O_RDONLY); os.fsync(fd); os.close(fd)"
_GO_DIR_SYNC = "d, err := os.Open(dir); then d.Sync() and d.Close(), checking both errors"
_JAVA_DIR_SYNC = "try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) { d.force(true); }"
_NODE_DIR_SYNC = "const d = fs.openSync(dir, 'r'); fs.fsyncSync(d); fs.closeSync(d)"
_NET_DIR_SYNC = ("fsync the directory: .NET has no directory handle API, so P/Invoke libc "
                 "open(dir, O_RDONLY|O_DIRECTORY), fsync(fd), close(fd)")
_RUST_DIR_SYNC = "File::open(dir)?.sync_all()?"

_DIR_SYNC = {
    "cpython": f"fsync the directory: {_PY_DIR_SYNC}",
    "go": f"sync the directory: {_GO_DIR_SYNC}",
    "jvm": f"force the directory: {_JAVA_DIR_SYNC}",
    "node": f"fsync the directory: {_NODE_DIR_SYNC}",
    "dotnet": _NET_DIR_SYNC,
    "mono": _NET_DIR_SYNC,
    "rust": f"sync the directory: {_RUST_DIR_SYNC}",
}

_FILE_SYNC = {
    "cpython": "call f.flush() then os.fsync(f.fileno()) (flush() alone only moves io's buffer into the kernel)",
    "go": "call f.Sync() (after w.Flush() when writing through a bufio.Writer)",
    "jvm": ("flush the writer, then call force(true) on the file's channel (FileOutputStream.getChannel(), "
            "FileChannel.open, or RandomAccessFile.getChannel()); flush() and close() sync nothing"),
    "node": ("call fs.fsyncSync(fd) (or fs.fsync / filehandle.sync()) before closing; "
             "fs.writeFileSync(path, data, {flush: true}) does it where your Node has that option"),
    "dotnet": "call stream.Flush(true), which writes FileStream's buffer and calls fsync (Flush() does not sync)",
    "mono": "call writer.Flush() and then fileStream.Flush(true), which calls fsync (Flush() does not sync)",
    "rust": ("call file.sync_all() (or sync_data()); with a BufWriter take the file back with "
             "w.into_inner()? first: File::flush() and BufWriter::flush() sync nothing"),
}

_MOVE = {
    "cpython": "os.replace(tmp, path)",
    "go": "os.Rename(tmp, path)",
    "jvm": "Files.move(tmp, path, ATOMIC_MOVE)",
    "node": "fs.renameSync(tmp, path)",
    "dotnet": "File.Move(tmp, path, overwrite: true)",
    "mono": "File.Replace(tmp, path, null) (File.Move is link+unlink on Mono)",
    "rust": "fs::rename(&tmp, &path)?",
}

_SYNC_FAILED = {
    "cpython": "os.fsync() raised OSError",
    "go": "f.Sync() returned an error",
    "jvm": "force() threw IOException",
    "node": "fs.fsyncSync() threw (err.code 'EIO', 'ENOSPC')",
    "dotnet": "Flush(true) threw IOException",
    "mono": "Flush(true) threw IOException",
    "rust": "sync_all() returned Err",
}

_RUNTIMES = tuple(_FILE_SYNC)


def _each(template) -> dict[str, str]:
    return {runtime: template(runtime) for runtime in _RUNTIMES}


FIXES: dict[str, dict[str, str]] = {
    "FS101": _each(lambda r: f"{_FILE_SYNC[r]} before {_MOVE[r]}; then {_DIR_SYNC[r]}"),
    "FS102": _each(lambda r: f"after {_MOVE[r]}, {_DIR_SYNC[r]}; a move across directories needs both synced"),
    "FS103": _each(lambda r: f"after creating the file and syncing it, {_DIR_SYNC[r]}"),
    "FS104": _each(lambda r: f"after removing the file, {_DIR_SYNC[r]} before relying on the removal"),
    "FS105": _each(lambda r: f"{_FILE_SYNC[r]} before exiting or reporting success"),
    "FS106": _each(lambda r: f"{_FILE_SYNC[r]} (and sync the directory for new names) before sending the reply"),
    "FS107": {
        "cpython": (f"write a temp file in the same directory (tempfile.NamedTemporaryFile(dir=dir, delete=False)), "
                    f"{_FILE_SYNC['cpython']}, os.replace() it over the file, then {_DIR_SYNC['cpython']}"),
        "go": (f"os.WriteFile truncates in place: write os.CreateTemp(dir, ...) instead, f.Sync() it, "
               f"os.Rename it over the file, then {_DIR_SYNC['go']}"),
        "jvm": ("Files.write and new FileOutputStream(path) truncate in place: write Files.createTempFile(dir, ...) "
                f"instead, force(true) it, Files.move(ATOMIC_MOVE) over the file, then {_DIR_SYNC['jvm']}"),
        "node": ("fs.writeFileSync(path) truncates in place: write a temp file in the same directory, "
                 f"fs.fsyncSync it, fs.renameSync it over the file, then {_DIR_SYNC['node']}"),
        "dotnet": ("File.WriteAllText and FileMode.Create truncate in place: write a temp file, Flush(true) it, "
                   f"File.Move(tmp, path, overwrite: true), then {_NET_DIR_SYNC}"),
        "mono": ("File.WriteAllText and FileMode.Create truncate in place: write a temp file, Flush(true) it, "
                 f"File.Replace(tmp, path, null), then {_NET_DIR_SYNC}"),
        "rust": ("fs::write and File::create truncate in place: write a temp file in the same directory, "
                 f"sync_all() it, fs::rename it over the file, then {_RUST_DIR_SYNC}"),
    },
    "FS201": _each(lambda r: f"when {_SYNC_FAILED[r]}, the kernel may already have dropped the data: do not retry "
                             f"the sync; stop (non-zero exit) and recover from a log or rewrite from a copy you hold"),
    "FS202": _each(lambda r: f"when {_SYNC_FAILED[r]}, stop with a non-zero status instead of writing on, "
                             f"moving the file into place or reporting success; never swallow that error"),
    "FS203": {
        "cpython": ("let OSError from write()/flush()/close() propagate; with os.write() loop until every byte "
                    "is written (it may write short)"),
        "go": ("check the error of every Write, and of w.Flush() for a bufio.Writer (it keeps the first write "
               "error and returns it there); stop on error"),
        "jvm": "let IOException from write(), flush() and close() propagate; never catch and continue",
        "node": "fs.writeSync returns the bytes written: loop until all are written; let its exceptions propagate",
        "dotnet": "let IOException from Write, Flush and Dispose propagate; never catch and continue",
        "mono": "let IOException from Write, Flush and Dispose propagate; never catch and continue",
        "rust": "use write_all (not write, which may write short) and propagate errors with ?",
    },
    "FS204": {
        "cpython": "f.close() raises OSError on write-back errors (NFS, FUSE): let it propagate for written files",
        "go": "check f.Close()'s error on written files: a bare `defer f.Close()` drops it",
        "jvm": "close() throws IOException on written files: let try-with-resources propagate it",
        "node": "fs.closeSync throws on write-back errors: do not catch and ignore it for written files",
        "dotnet": "Dispose()/Close() throws IOException on write-back errors: do not swallow it",
        "mono": "Dispose()/Close() throws IOException on write-back errors: do not swallow it",
        "rust": "dropping a File ignores close() errors: call sync_all() before the drop and check its result",
    },
    "FS301": {
        "cpython": "use os.fdatasync(fd) (or os.fsync) where the data must survive; sync_file_range only starts write-back",
        "go": "use f.Sync() (or unix.Fdatasync) where the data must survive; unix.SyncFileRange only starts write-back",
        "rust": "use file.sync_data() (or sync_all()) where the data must survive; sync_file_range only starts write-back",
    },
    "FS302": {
        "cpython": "open with os.O_DIRECT | os.O_DSYNC, or os.fdatasync(fd) after the O_DIRECT writes",
        "go": "open with syscall.O_DIRECT|os.O_SYNC, or f.Sync() after the O_DIRECT writes",
        "jvm": ("open with ExtendedOpenOption.DIRECT plus StandardOpenOption.DSYNC, or channel.force(false) "
                "after the writes"),
        "rust": ("open with OpenOptions::custom_flags(libc::O_DIRECT | libc::O_DSYNC), or file.sync_data() "
                 "after the writes"),
    },
    "FS303": {
        "cpython": "call mm.flush() (msync MS_SYNC) before mm.close(), or os.fsync the file",
        "go": "call unix.Msync(b, unix.MS_SYNC) before unix.Munmap, or f.Sync()",
        "jvm": ("call MappedByteBuffer.force() (msync) before dropping the mapping. The JVM's own perf counters "
                "(/tmp/hsperfdata_USER/PID) are such a mapping and need no durability: exclude them "
                "(--exclude '/tmp/hsperfdata_*') or run java with -XX:-UsePerfData"),
        "rust": "call mmap.flush() (memmap2: msync MS_SYNC) before dropping the mapping, or file.sync_all()",
    },
    "FS304": _each(lambda r: f"instead of a whole-filesystem sync, {_FILE_SYNC[r][0].lower()}{_FILE_SYNC[r][1:]} "
                             f"for each file you wrote, then {_DIR_SYNC[r]}"),
    "FS901": {
        "node": ("Node's libuv (1.45 to 1.48) can send fs operations through io_uring, which syscall tracing "
                 "cannot see: trace again with UV_USE_IO_URING=0 in the environment"),
    },
}


@dataclass(frozen=True)
class KnownBug:
    """A runtime bug, by version range [since, until), that can explain findings of some rules."""

    runtime: str
    since: tuple
    until: tuple
    rules: frozenset
    note: str


KNOWN_BUGS = (
    KnownBug("dotnet", (6,), (8,), frozenset({"FS101", "FS105", "FS106"}),
             ".NET 6 and 7: FileStream.Flush(true) returned without calling fsync when its buffer still held "
             "data (dotnet/runtime#77373, #99445; fixed in .NET 8). If this code calls Flush(true), that call "
             "did not sync: call it twice, or move to .NET 8"),
)


def version_tuple(version: str | None) -> tuple | None:
    """"7.0.5" -> (7, 0, 5); "go1.19.8" -> (1, 19, 8); None when no number leads."""
    match = re.search(r"\d+(?:\.\d+)*", version or "")
    return tuple(int(part) for part in match.group().split(".")) if match else None


def fix_for(code: str, runtime: dict | None, default: str) -> str:
    by_runtime = FIXES.get(code)
    if runtime and by_runtime:
        return by_runtime.get(runtime.get("name"), default)
    return default


def notes_for(code: str, runtime: dict | None) -> list[str]:
    """Known bugs of this runtime version that can explain a finding of this rule."""
    if not runtime:
        return []
    version = version_tuple(runtime.get("version"))
    if version is None:
        return []
    return [bug.note for bug in KNOWN_BUGS
            if bug.runtime == runtime.get("name") and code in bug.rules and bug.since <= version < bug.until]
