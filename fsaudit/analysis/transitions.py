"""How each event changes the model (fsaudit.analysis.model): one function per kind of
call, `(engine, event) -> None`, run after the rules' hooks have seen the state before it.
HANDLERS maps a syscall name to its function; Engine.feed looks it up once per event."""

from __future__ import annotations

from .model import (FileState, PendingEntries, ProcessInfo, Writer, dirname, entry_of, kept, pid_of, span, writer,
                    writers_of)
from .roles import APPENDED, BORN, EMPTY, LINKED, OPENED_FOR_WRITING, PRESENT, REWRITTEN, STDIO_FDS
from .rules.base import (
    COPY_SYSCALLS, FAILED_SYNC, LINK_SYSCALLS, OPEN_SYSCALLS, RENAME_SYSCALLS, SEND_SYSCALLS, SYNC_FILE_RANGE,
    UNLINK_SYSCALLS, WRITE_SYSCALLS, held_data, is_send, is_synced_write, succeeded,
)

# A directory sync failing with these says "not supported here", not "data lost" (rules.md).
DIR_SYNC_ERRORS_NOT_DATA_LOSS = frozenset({"EINVAL", "EBADF", "EROFS"})


def run_call_sizes(calls: int, nbytes: int, size_max: int | None) -> list[tuple[int, int]]:
    """(size, calls) pairs for a write run, which the kernel folds into calls, bytes
    and the largest call. Exact for single calls, uniform runs, and runs of two.
    Otherwise the run is taken as largest-size calls plus one remainder, the way
    buffered writers write (full buffers, then the tail), when the bytes allow
    it; else as one largest call and the rest at their mean."""
    if calls == 1:
        return [(nbytes, 1)]
    if not size_max:      # a log from before runs carried their largest call
        return [(nbytes // calls, calls)]
    rest = nbytes - size_max * (calls - 1)
    if rest == size_max:
        return [(size_max, calls)]
    if 0 < rest < size_max:
        return [(size_max, calls - 1), (rest, 1)]
    return [(size_max, 1), ((nbytes - size_max) // (calls - 1), calls - 1)]


# Shared steps.

def file_event(engine, event: dict) -> FileState | None:
    """The in-scope regular file an fd event is about, else None (and a file its role
    keeps out of scope is counted as left out)."""
    if event.get("kind") != "file":
        return None
    path = event.get("path")
    if not path or path in engine.not_files:
        return None
    state = engine.node(path)
    if state.in_scope and not state.is_dir:
        return state
    if state.fixed_role is not None:
        engine.roles.leave_out(state)
    return None


def make_dirty(engine, state: FileState, event: dict, nbytes: int, calls: int) -> None:
    event = kept(event)
    if state.dirty_first is None:
        state.dirty_first = event
    state.dirty_last = event
    state.dirty_bytes += nbytes
    state.dirty_writes += calls
    # Its writer's: one lookup per write, an entry per run of writes a barrier ends.
    entry = writer(state, event["pid"])
    if entry is not None:
        entry.last = event
        return
    add_writer(engine, state, event)


# Dirty data per writer (FileState.writers, for FS106): what each process wrote to a
# file since its own latest durability barrier, until a barrier of the file covers it.
# engine.written_by indexes the same entries by process.

def add_writer(engine, state: FileState, event: dict) -> None:
    pid = event["pid"]
    event = kept(event)
    entries = state.writers
    if entries is None:     # the first writer: its write stands for its Writer (model.entry_of)
        state.writers = event
    else:
        if entries.__class__ is not tuple and entries.__class__ is not Writer:
            writer(state, pid_of(entries))      # a lone write, joined by another writer: a Writer now
        state.writers = (*writers_of(state), Writer(pid, event, event))
    files = engine.written_by.get(pid)
    if files is None:
        files = engine.written_by[pid] = {}
    files[state] = None


def _drop_writer(engine, state: FileState, pid: int) -> None:
    rest = tuple(entry for entry in writers_of(state) if pid_of(entry) != pid)
    state.writers = rest[0] if len(rest) == 1 else rest or None
    files = engine.written_by.get(pid)
    if files is not None:
        files.pop(state, None)


# Times are whole microseconds (t rounded, latency_us cut): a write that completed
# this close to a barrier's start is taken to have come before it.
CLOCK_SLACK_S = 2e-6


def began(barrier: dict) -> float:
    """When a barrier began: a sync's exit time less its latency, an O_SYNC write run's
    first write, else its time."""
    latency = barrier.get("latency_us")
    return barrier["t"] - latency / 1e6 if latency else barrier.get("t_first", barrier["t"])


def _covers(entry: Writer | dict, barrier: dict, begin: float) -> bool:
    """Does the barrier cover every write of entry? It covers those of its own thread
    (they came first) and those that completed before it began; when some did not,
    the first left is taken to be the last (a write run's first write completed at
    its t_first, the run at its t)."""
    # .get: a recorded log may lack tid (the reader checks types, not presence).
    (first, last), tid, before = span(entry), barrier.get("tid"), begin + CLOCK_SLACK_S
    if last.get("tid") == tid or last["t"] < before:
        return True
    if first is not last and (first.get("tid") == tid or first.get("t_first", first["t"]) < before):
        entry.first = last      # a Writer: a lone write's first is its last
    return False


def cover_file(engine, state: FileState, barrier: dict) -> None:
    """A barrier of this file: the writes to it that completed before it began are durable, whoever made them."""
    if state.writers is not None:
        begin = began(barrier)
        for pid in [pid_of(entry) for entry in writers_of(state) if _covers(entry, barrier, begin)]:
            _drop_writer(engine, state, pid)


def process_barrier(engine, barrier: dict) -> None:
    """A process made a durability barrier (of any file): what it wrote before is past its
    commit point, as a write-ahead log synced before the reply covers the data pages (FS106)."""
    pid = barrier["pid"]
    files = engine.written_by.get(pid)
    if files:
        begin = began(barrier)
        for state in [state for state in files if _covers(entry_of(state, pid), barrier, begin)]:
            _drop_writer(engine, state, pid)


def forget_writers(engine, state: FileState | None) -> None:
    """The file is gone (unlinked, or replaced by a rename): no writer's data in it counts."""
    if state is not None and state.writers is not None:
        for entry in writers_of(state):
            _drop_writer(engine, state, pid_of(entry))


def mark_intent(engine, state: FileState) -> None:
    state.intent = True
    if state.is_data:      # a log, a cache file... lends no intent to the files beside it
        engine.node(dirname(state.path), is_dir=True).child_intent = True


def sync_attempted(engine, state: FileState, event: dict) -> None:
    """Remember whether the latest sync of this file failed in a way that can lose data."""
    ret = event.get("ret")
    if isinstance(ret, str) and not (state.is_dir and ret in DIR_SYNC_ERRORS_NOT_DATA_LOSS):
        state.failed_sync = kept(event)
        state.failed_sync_reported = False
        engine.wake(FAILED_SYNC)
    else:
        state.failed_sync = None


def pend(engine, directory: str, code: str, event: dict, name: str, intent: bool = False,
         data: bool = True, departure: bool = False) -> None:
    state = engine.node(directory, is_dir=True)
    if state.pending is None:
        state.pending = {}
        engine.pending_dirs[state] = None
    key = (code, event["pid"])
    event = kept(event)
    entries = state.pending.get(key)
    if entries is None:
        state.pending[key] = PendingEntries(event, event, {name: None}, intent=intent, data=data,
                                            departures=departure)
    else:
        entries.last = event
        entries.names[name] = None
        entries.count += 1
        entries.intent = entries.intent or intent
        entries.data = entries.data or data
        entries.departures = entries.departures and departure


def rename_pending(engine, old: str, new: str) -> None:
    """A name a rename or link made is renamed again (.tmp-pack -> .pack): pending
    entries name it by its final name."""
    directory = engine.files.get(dirname(old))
    pending = directory.pending if directory is not None else None
    if not pending:
        return
    for (code, _pid), entries in pending.items():
        if code == "FS102" and old in entries.names:
            entries.names = {new if name == old else name: None for name in entries.names}


def move(engine, old: str, new: str) -> None:
    """The state of old (and of everything under it, for a directory) now lives at new."""
    files = engine.files
    state = files.pop(old, None)
    if state is not None:
        old = state.path    # the same name: one string for the state's, `gone`'s and renamed_from
    replaced = files.pop(new, None)
    if replaced is not None:
        engine.record_move(replaced)
        if replaced.__class__ is FileState:
            forget_writers(engine, replaced)
    engine.gone.add(old)
    engine.gone.discard(new)
    for names in (engine.roles.stdio, engine.not_files):    # what a name is moves with it
        if old in names:
            names.discard(old)
            names.add(new)
    if state is None:
        return
    engine.record_move(state)
    state.path = new
    state.renamed_from, state.renamed_index = old, engine.index
    engine.place(state)
    state.created_event, state.created_index = None, 0   # the rename's own directory entry is what matters now
    files[new] = state
    if state.is_dir:
        prefix = old + "/"
        for child in [p for p in files if p.startswith(prefix)]:
            moved = files.pop(child)
            engine.record_move(moved)
            moved.path = new + child[len(old):]
            engine.place(moved)
            files[moved.path] = moved


# Data.

def appends(event: dict) -> bool:
    """A write at the end of the file whatever the offset: O_APPEND, or pwritev2 RWF_APPEND."""
    return bool(event.get("o_append")) or "RWF_APPEND" in event.get("rwf", ())


def on_write(engine, event: dict) -> None:
    nbytes = event.get("ret")
    if not isinstance(nbytes, int) or nbytes <= 0:
        if event.get("kind") == "file" and isinstance(nbytes, str):   # a failed write: still no lock file
            state = file_event(engine, event)
            if state is not None:
                state.conduct |= APPENDED if appends(event) else REWRITTEN
        return
    state = file_event(engine, event)
    if state is None:
        kind = event.get("kind")
        if kind == "socket":
            on_send(engine, event)
        elif kind == "file" and is_synced_write(event):     # a file out of scope: still a barrier
            process_barrier(engine, event)
        return
    state.conduct = (state.conduct | (APPENDED if appends(event) else REWRITTEN)) & ~EMPTY
    calls = event.get("calls", 1)
    state.writes += calls
    state.bytes_written += nbytes
    io = engine.processes[event["pid"]].io
    io.writes += calls
    io.bytes_written += nbytes
    for size, count in run_call_sizes(calls, nbytes, event.get("size_max")):
        io.write_sizes[size] += count
    o_direct = event.get("o_direct")
    if o_direct:
        io.o_direct_writes += calls
    if is_synced_write(event):
        io.o_sync_writes += calls
        mark_intent(engine, state)
        process_barrier(engine, event)
        return
    make_dirty(engine, state, event, nbytes, calls)
    if o_direct and state.odirect_event is None:
        state.odirect_event = kept(event)


def on_copy(engine, event: dict) -> None:
    nbytes = event.get("bytes") or 0
    if not succeeded(event) or nbytes <= 0:
        return
    state = file_event(engine, event)
    if state is None:
        if event.get("kind") == "socket":
            on_send(engine, event)
        return
    state.conduct = (state.conduct | REWRITTEN) & ~EMPTY
    state.writes += 1
    state.bytes_written += nbytes
    make_dirty(engine, state, event, nbytes, 1)


def on_truncate(engine, event: dict) -> None:
    if not succeeded(event):
        return
    if event["syscall"] == "truncate":
        state = engine.node(event["path"]) if event.get("path") else None
        state = state if state is not None and state.in_scope and not state.is_dir else None
    else:
        state = file_event(engine, event)
    if state is None:
        return
    state.conduct |= REWRITTEN
    length = event.get("length")
    size_before = event.get("size_before")
    if length == 0:
        # To 0: a change only if it held data (FS105 wants written bytes besides).
        if held_data(state, event):
            make_dirty(engine, state, event, 0, 0)
        state.conduct |= EMPTY
        return
    state.conduct &= ~EMPTY
    if size_before is None or size_before != length:
        make_dirty(engine, state, event, 0, 0)


def on_fallocate(engine, event: dict) -> None:
    state = file_event(engine, event) if succeeded(event) else None
    if state is not None:
        state.conduct = (state.conduct | REWRITTEN) & ~EMPTY
        make_dirty(engine, state, event, 0, 0)


def on_mmap(engine, event: dict) -> None:
    if not succeeded(event) or "MAP_SHARED" not in event.get("flags", ()) or "PROT_WRITE" not in event.get("prot", ()):
        return
    state = file_event(engine, event)
    if state is not None:
        state.conduct = (state.conduct | REWRITTEN) & ~EMPTY   # the mapping may write to it
    if state is not None and state.map_event is None:
        state.map_event = event = kept(event)
        if entry_of(state, event["pid"]) is None:
            add_writer(engine, state, event)


# Barriers.

def on_msync(engine, event: dict) -> None:
    state = engine.files.get(event.get("path") or "")
    if state is None:
        return
    sync_attempted(engine, state, event)
    if succeeded(event) and "MS_SYNC" in event.get("flags", ()):
        state.map_event = None
        process_barrier(engine, event)
        if state.writers is not None:   # the mappings' writers: their data is what msync flushed
            for pid in [pid_of(entry) for entry in writers_of(state) if span(entry)[1]["syscall"] == "mmap"]:
                _drop_writer(engine, state, pid)


def on_fsync(engine, event: dict) -> None:
    path = event.get("path")
    if not path:
        return
    if succeeded(event):
        process_barrier(engine, event)
    state = engine.files.get(path)
    kind = event.get("kind")
    is_dir = kind == "dir" or (state is not None and state.is_dir)
    if not is_dir and kind != "file":
        return
    state = engine.node(path, is_dir)
    # A directory outside --path still holds in-scope entries: its syncs always count.
    if not is_dir and not state.in_scope:
        if state.fixed_role is not None:
            engine.roles.leave_out(state)
        return
    io = engine.processes[event["pid"]].io
    if is_dir:
        io.dir_syncs += 1
    else:
        if event["syscall"] == "fsync":
            io.fsync += 1
        else:
            io.fdatasync += 1
        latency = event.get("latency_us")
        if latency is not None:
            io.fsync_latencies_us.append(latency)
            if state.sync_latencies_us:
                state.sync_latencies_us.append(latency)
            else:
                state.sync_latencies_us = [latency]
    sync_attempted(engine, state, event)
    if not succeeded(event):
        return
    state.syncs += 1
    state.last_sync_at = event.get("t")
    state.last_sync_index = engine.index
    if is_dir:
        state.pending = None
        engine.pending_dirs.pop(state, None)
    else:
        state.clear_dirty()
        cover_file(engine, state, event)
        mark_intent(engine, state)


def on_sync_file_range(engine, event: dict) -> None:
    state = file_event(engine, event)
    if state is None:
        return
    engine.processes[event["pid"]].io.sync_file_range += 1
    sync_attempted(engine, state, event)
    if succeeded(event) and state.is_dirty:
        state.sfr_event = kept(event)
        engine.wake(SYNC_FILE_RANGE)


def on_sync(engine, event: dict) -> None:
    """sync/syncfs: every file and directory entry is on disk (FS304 reports the call)."""
    if not succeeded(event):
        return
    for state in engine.files.values():
        if state.is_dirty:
            state.clear_dirty()
        if state.writers is not None:
            state.writers = None
        state.last_sync_index = engine.index
    engine.written_by.clear()
    for directory in engine.pending_dirs:
        directory.pending = None
    engine.pending_dirs.clear()


# Names.

def on_open(engine, event: dict) -> None:
    kind = event.get("kind")
    path = event.get("path")
    if not succeeded(event) or not path:
        return
    if kind not in ("file", "dir") or (kind == "file" and path in engine.not_files):
        if kind == "other":     # a FIFO, a device: its name is no file's
            engine.not_files.add(path)
        return
    flags = event.get("flags", ())
    state = engine.node(path, kind == "dir")
    # Created by this open: O_EXCL, or a name the tree saw absent (removed, renamed away,
    # or new in a directory the tree made), or else the birth time says so. That one
    # says "created" for a file another process made a moment before (coarse
    # timestamps): an open of a file the tree has seen is no create.
    created = "O_CREAT" in flags and (
        "O_EXCL" in flags or path in engine.gone
        or (not state.conduct & PRESENT and (event.get("created") or (
            not event.get("existed") and _in_new_directory(engine, path)))))
    if kind == "file" and ("O_WRONLY" in flags or "O_RDWR" in flags):
        state.conduct |= OPENED_FOR_WRITING
    truncates = "O_TRUNC" in flags and kind == "file"
    if truncates and state.in_scope and not state.is_dir and not created and held_data(state, event):
        make_dirty(engine, state, event, 0, 0)
    if created:
        engine.gone.discard(path)
        engine.not_files.discard(path)
        state.created_event = kept(event)
        state.created_index = engine.index
        state.conduct |= BORN
    if kind == "file":
        state.conduct |= PRESENT
        if created or truncates:
            state.conduct |= EMPTY


def _in_new_directory(engine, path: str) -> bool:
    """In a directory the tree made: a name not seen there yet did not exist (the birth
    time cannot tell when the file was renamed away before it was read)."""
    directory = engine.files.get(dirname(path))
    return directory is not None and directory.is_dir and bool(directory.conduct & BORN)


def on_mkdir(engine, event: dict) -> None:
    if succeeded(event) and event.get("path"):
        engine.gone.discard(event["path"])
        state = engine.node(event["path"], is_dir=True)
        state.created_event = kept(event)
        state.created_index = engine.index
        state.conduct |= BORN


def on_mknod(engine, event: dict) -> None:
    if succeeded(event) and event.get("path"):
        engine.gone.discard(event["path"])
        if event.get("type", "file") != "file":
            engine.not_files.add(event["path"])


def on_bind(engine, event: dict) -> None:
    """A unix socket's name in the filesystem: never a file (rules.md, scope)."""
    if succeeded(event) and event.get("path"):
        engine.gone.discard(event["path"])
        engine.not_files.add(event["path"])


def on_inherit(engine, event: dict) -> None:
    """An fd from before tracing: fds 0-2 on a file make it stdio; a unix socket's name is no file."""
    path = event.get("path")
    if event.get("fd") in STDIO_FDS and event.get("kind") == "file" and path:
        engine.roles.stdio.add(path)
        state = engine.files.get(path)
        if state is not None:
            engine.place(state)
    if event.get("bound"):
        engine.not_files.add(event["bound"])


def on_new_name(engine, event: dict) -> None:
    if succeeded(event) and event.get("path2"):
        engine.gone.discard(event["path2"])


def on_rename(engine, event: dict) -> None:
    old, new = event.get("path"), event.get("path2")
    if not succeeded(event) or not old or not new:
        return
    engine.processes[event["pid"]].io.renames += 1
    move(engine, old, new)
    rename_pending(engine, old, new)
    if new in engine.not_files:
        return
    moved = engine.files.get(new)      # placed by move(): its scope is decided
    if (moved.in_scope if moved is not None else engine.in_scope(new)) or engine.in_scope(old):
        old_dir, new_dir = dirname(old), dirname(new)
        data = moved.is_data if moved is not None else engine.roles.of_path(new) == "data"
        pend(engine, new_dir, "FS102", event, new, data=data)
        if old_dir != new_dir:
            pend(engine, old_dir, "FS102", event, new, data=data, departure=True)


def on_link(engine, event: dict) -> None:
    new = event.get("path2")
    if not succeeded(event) or not new:
        return
    engine.gone.discard(new)
    engine.processes[event["pid"]].io.links += 1
    source = engine.files.get(event.get("path"))
    if source is not None:
        source.conduct |= LINKED
    if engine.in_scope(new):
        pend(engine, dirname(new), "FS102", event, new)


def on_unlink(engine, event: dict) -> None:
    path = event.get("path")
    if not succeeded(event) or not path:
        return
    if path in engine.not_files:
        engine.not_files.discard(path)
        engine.gone.add(path)
        return
    state = engine.files.pop(path, None)
    if state is not None:
        state.unlinked = True
        role = state.role
        engine.record_move(state)
        if state.__class__ is FileState:
            forget_writers(engine, state)
    else:
        role = engine.roles.of_path(path)
    if role != "data":
        engine.removed_roles[path] = role
    else:
        engine.removed_roles.pop(path, None)
    engine.gone.add(path)
    if engine.in_scope(path):
        # A commit point only where the removed file was itself made durable (a synced rollback
        # journal) and still holds something: removing a temp or an obsolete file the tree never
        # synced, or one it emptied (PostgreSQL truncates a dropped relation's file to 0 at commit
        # and unlinks it after the next checkpoint), publishes nothing; back after a crash, it
        # is an empty file.
        pend(engine, dirname(path), "FS104", event, path,
             intent=(state is not None and state.intent and role == "data"
                     and not state.conduct & EMPTY),
             data=role == "data")


def on_close(engine, event: dict) -> None:
    engine.settle(engine.files.get(event.get("path")))


# Processes.

def on_fork(engine, event: dict) -> None:
    child = event.get("child")
    if not child:
        return
    parent = engine.processes[event["pid"]]
    info = engine.processes.get(child)
    if info is None:
        info = engine.processes[child] = ProcessInfo(child)
        engine.images.append(info)
    info.ppid, info.forked = parent.pid, True
    info.exe, info.argv, info.runtime = parent.exe, parent.argv, parent.runtime


def on_adopt(engine, event: dict) -> None:
    info = engine.processes[event["pid"]]
    info.ppid = event.get("ppid", info.ppid)
    info.exe = event.get("exe") or info.exe
    info.argv = event.get("argv") or info.argv


def on_exec(engine, event: dict) -> None:
    """A new image: its own entry, with its own argv (never the one before the exec,
    which named sqlite3 "bash"), and its `runtime` event to follow."""
    pid = event["pid"]
    old = engine.processes[pid]
    if old.exe is None and old.argv is None and old.exec_at is None:
        info = old          # known from nothing before this exec: the command fsaudit started
    else:
        info = engine.processes[pid] = ProcessInfo(pid, ppid=old.ppid, previous=old)
        engine.images.append(info)
        # A fork child between its fork and its exec (a shell's) is the parent's
        # program for a moment: listed only if it did I/O of its own then.
        old.listed = not old.forked or old.did_io
    info.exe = event.get("path")
    info.argv = event.get("argv")
    info.exec_at = event.get("t")


def on_runtime(engine, event: dict) -> None:
    engine.processes[event["pid"]].runtime = {"name": event["name"], "version": event.get("version")}


def on_send(engine, event: dict) -> None:
    if is_send(event):
        engine.acknowledgements += event.get("calls", 1)     # a run (write or send) counts each call


def on_exit(engine, event: dict) -> None:
    # Its writes can no longer be acknowledged by it.
    for state in engine.written_by.pop(event["pid"], ()):
        _drop_writer(engine, state, event["pid"])
    info = engine.processes[event["pid"]]
    info.exited = True
    info.exit_code = event.get("code")
    info.exit_signal = event.get("signal")


def on_lost(engine, event: dict) -> None:
    engine.counts.lost_events += event.get("count", 0)


HANDLERS = {"fsync": on_fsync, "fdatasync": on_fsync, "sync_file_range": on_sync_file_range,
            "sync": on_sync, "syncfs": on_sync, "msync": on_msync, "mmap": on_mmap,
            "truncate": on_truncate, "ftruncate": on_truncate, "fallocate": on_fallocate,
            "mkdir": on_mkdir, "mkdirat": on_mkdir, "symlink": on_new_name, "symlinkat": on_new_name,
            "mknod": on_mknod, "mknodat": on_mknod, "bind": on_bind, "inherit": on_inherit, "close": on_close,
            "fork": on_fork, "exec": on_exec, "exit": on_exit, "adopt": on_adopt,
            "lost": on_lost, "runtime": on_runtime}
for _names, _handler in ((SEND_SYSCALLS, on_send), (WRITE_SYSCALLS, on_write), (COPY_SYSCALLS, on_copy),
                         (RENAME_SYSCALLS, on_rename), (LINK_SYSCALLS, on_link), (UNLINK_SYSCALLS, on_unlink),
                         (OPEN_SYSCALLS, on_open)):
    HANDLERS.update(dict.fromkeys(_names, _handler))
