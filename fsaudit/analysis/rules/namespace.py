"""FS101-FS107: data and namespace rules."""

from __future__ import annotations

import os.path
import sys
from dataclasses import dataclass, field
from typing import ClassVar

from ..model import Call, entry_of, kept, span, writer
from .base import (
    COPY_SYSCALLS, LINK_SYSCALLS, OPEN_SYSCALLS, RENAME_SYSCALLS, SEND_SYSCALLS, UNLINK_SYSCALLS, WRITE_SYSCALLS,
    Rule, held_data, is_send, is_synced_write, nbytes, succeeded, unseen_size,
)


def _unsynced(dirty_bytes: int) -> str:
    if dirty_bytes:
        return f"{nbytes(dirty_bytes)} written to it were not fsynced"
    return "its changes were not fsynced"


@dataclass(slots=True, eq=False)
class Window:
    """A file published with dirty data (FS101), open until it and its directory are durable."""

    rule: ClassVar[str] = "FS101"     # held alone as the file's mark (Rule.remember)

    state: object           # the published file's FileState (it moves with renames)
    event: Call             # the rename or link
    dirty_first: Call       # the file's dirty data at the call: its first write and its last
    dirty_last: Call
    label: str              # the process, as messages name it (interned: one for all its windows)
    dirty_bytes: int        # the file's unsynced bytes at the call
    directory: str          # where the published name is
    acknowledgements: int   # engine.acknowledgements at the call
    data_at: float | None = None    # t of the file's first sync since
    dir_at: float | None = None     # t of the directory's first sync since

    @property
    def evidence(self) -> tuple:
        return self.dirty_first, self.dirty_last, self.event

    @property
    def message(self) -> str:
        """What the process did, for either outcome (made when needed: a message kept per
        open window was a sixth of FS101's memory per file)."""
        event = self.event
        published = "linked {} as {}" if event["syscall"] in LINK_SYSCALLS else "renamed {} over {}"
        return (f"{self.label} {published.format(event.get('path') or '', event.get('path2'))} "
                f"while {_unsynced(self.dirty_bytes)}")


class RenameUnsyncedData(Rule):
    code, name, severity = "FS101", "rename-unsynced-data", "error"
    summary = "a rename or link publishes a file whose written data was never fsynced"
    fix = ("flush the runtime's buffer and fsync the file before renaming it over the target; "
           "then fsync the target's directory")
    syscalls = RENAME_SYSCALLS | LINK_SYSCALLS | UNLINK_SYSCALLS | {"fsync", "fdatasync", "sync", "syncfs"}
    idle_syscalls = UNLINK_SYSCALLS | {"fsync", "fdatasync", "sync", "syncfs"}   # until a window opens

    # The finding is an error at the call, so that the live view and the pytest plugin
    # see it then. Its window stays open: a batch that makes the file and its directory
    # durable later, before anything goes out to the outside world (engine.acknowledgements)
    # and before the end, takes the error back and leaves info with the window's length.
    # Open windows: the file's mark (a Window, or a tuple of them when several: _windows),
    # and engine.publications by directory.

    def on_event(self, engine, event):
        if not succeeded(event):
            return
        syscall, t = event["syscall"], event["t"]
        if syscall in ("sync", "syncfs"):
            for windows in list(engine.publications.values()):
                for window in list(windows):
                    window.data_at, window.dir_at = window.data_at or t, window.dir_at or t
                    self._close(engine, window)
            return
        path = event.get("path") or ""
        state = engine.files.get(path)
        if syscall in ("fsync", "fdatasync"):
            for window in list(engine.publications.get(path, ())):      # path is their directory
                window.dir_at = window.dir_at or t
                self._close(engine, window)
            for window in self._windows(state) if state is not None else ():
                window.data_at = window.data_at or t
                self._close(engine, window)
            return
        if syscall in UNLINK_SYSCALLS:
            for window in self._windows(state) if state is not None else ():
                self._close(engine, window, gone=True)      # removed before it was durable
            return
        target = engine.files.get(event.get("path2") or "")
        if syscall in RENAME_SYSCALLS and target is not None and target is not state:
            replacement = state if state is not None and not state.is_dir and state.in_scope else None
            for window in self._windows(target):
                if replacement is None:
                    self._close(engine, window, gone=True)      # replaced before it was durable
                else:       # the replacement may be settled (engine.NAMING_SYSCALLS): marked, it is not
                    self._carry(window, target, engine.node(replacement.path), t)
        if state is None or state.is_dir or not state.in_scope or not state.is_dirty:
            return
        state.published_dirty = state.dirty_last
        # link() adds a name and never replaces one; rename() may replace (Window.message).
        target_path = event.get("path2")
        call = kept(event)
        window = Window(state, call, state.dirty_first, state.dirty_last,
                        sys.intern(engine.process_label(event["pid"], event)), state.dirty_bytes,
                        sys.intern(os.path.dirname(target_path or path)), engine.acknowledgements)
        self._mark(state, window)
        engine.publications.setdefault(window.directory, {})[window] = None
        engine.wake(self.code)
        # state.path: the event's path, as the string the model already holds (the finding's key keeps it)
        engine.report(self.code, event, state.path, window.message, window.evidence, target_path=target_path)

    def _carry(self, window, target, replacement, t):
        """The published file is replaced under its name before it was durable (initdb's
        bootstrap writes replorigin_checkpoint.tmp and renames it over the last one at each
        checkpoint): what the name holds now is the replacement, so the window stays open
        on it, and closes in time only if the replacement and the directory entry of its
        rename are made durable in time."""
        self._unmark(target, window)
        window.state = replacement
        window.data_at = None if replacement.is_dirty else t
        window.dir_at = None
        self._mark(replacement, window)

    def _windows(self, state) -> tuple:
        mark = self.recall(state)
        return () if mark is None else (mark,) if mark.__class__ is Window else mark

    def _mark(self, state, window):
        windows = self._windows(state)
        self.remember(state, (*windows, window) if windows else window)

    def _unmark(self, state, window):
        windows = tuple(open_ for open_ in self._windows(state) if open_ is not window)
        if windows:
            self.remember(state, windows[0] if len(windows) == 1 else windows)
        else:
            self.forget(state)

    def on_finish(self, engine):
        for windows in list(engine.publications.values()):
            for window in list(windows):
                self._close(engine, window, gone=True)

    def _close(self, engine, window, gone=False):
        """Close the window (the file and its directory synced since, or it is gone); closed
        in time, the error becomes info."""
        if not gone and (window.data_at is None or window.dir_at is None):
            return
        self._unmark(window.state, window)
        in_directory = engine.publications[window.directory]
        del in_directory[window]
        if not in_directory:
            del engine.publications[window.directory]
        event = window.event
        path, target = event.get("path"), event.get("path2")
        if gone or engine.acknowledgements > window.acknowledgements:
            return      # the error reported at the call stands
        length = max(window.data_at, window.dir_at) - event["t"]
        engine.retract(self.code, event, path)
        engine.report(self.code, event, path,
                      f"{window.message}; it and its directory were made durable {length:.3f} s later, "
                      f"before anything was sent to the outside world", window.evidence,
                      target_path=target, severity="info")


LISTED = 3     # names a message spells out before "and N more"


def _listed(names: list[str]) -> str:
    """Every name, up to a few; else how many, the first few and how many more: a
    message never names one of several files as if it were all of them."""
    if len(names) == 1:
        return names[0]
    if len(names) <= LISTED + 1:         # "and 1 more" would take the place of the last
        return f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{len(names)} names ({', '.join(names[:LISTED])} and {len(names) - LISTED} more)"


class PendingDirectoryRule(Rule):
    """Directory entries this rule's calls changed that no later directory fsync covered."""

    action: str         # what the process did to the entry, for the message
    unit: str           # what a repeat is called, for the message
    intent_gated = False

    def on_finish(self, engine):
        for directory in engine.pending_dirs:
            for (code, pid), entries in directory.pending.items():
                if code != self.code:
                    continue
                if self.intent_gated and not entries.intent:
                    continue
                names = list(entries.names)
                times = f" ({entries.count} {self.unit})" if entries.count > 1 else ""
                message = (f"{engine.process_label(pid, entries.last)} {self.action} {_listed(names)}{times} "
                           f"but never fsynced the directory {directory.path} afterwards")
                # Only names moved out of this directory: losing that entry's change brings
                # the old name back beside the new one (a stale temp name); what the new
                # name holds depends on the new directory alone, judged on its own entry.
                if entries.departures:
                    message = (f"{engine.process_label(pid, entries.last)} moved {_listed(names)}{times} out of "
                               f"{directory.path} and never fsynced it: after a crash the old name may "
                               f"come back beside the new one")
                engine.report(self.code, entries.last, directory.path, message,
                              [entries.first, entries.last], target_path=names[0] if len(names) == 1 else None,
                              pid=pid, count=entries.count, severity="info" if entries.departures else None,
                              # data if any entry was a data file's; else none was, and the last says which role
                              role="data" if entries.data else engine.role_at_end(names[-1]))


class RenameUnsyncedDir(PendingDirectoryRule):
    code, name, severity = "FS102", "rename-unsynced-dir", "warning"
    summary = "a rename or link whose directory is never fsynced afterwards"
    fix = ("after the rename, open the directory (each directory, if it moved across) read-only "
           "and fsync that descriptor")
    action, unit = "renamed or linked", "times"


class CreateUnsyncedDir(Rule):
    code, name, severity = "FS103", "create-unsynced-dir", "warning"
    summary = "a created file's data is made durable but its directory entry is not"
    fix = "after creating the file and fsyncing it, fsync its parent directory too"

    def on_finish(self, engine):
        files = engine.files
        for state in files.values():
            created = state.created_event
            if created is None or not state.in_scope:
                continue
            durable = state.syncs > 0 if state.is_dir else state.intent
            if not durable:
                continue
            unsynced = _unsynced_entry(files, state)
            if unsynced is None:
                continue
            directory, moved = unsynced
            where = (f"its directory {directory}" if moved is None else
                     f"{directory} after its directory was renamed from {moved.renamed_from} to {moved.path}")
            engine.report(self.code, created, state.path,
                          f"{engine.process_label(created['pid'], created)} created {state.path} and made it "
                          f"durable but never fsynced {where}",
                          [created])


def _unsynced_entry(files, state):
    """Where the directory entry the tree created for state is not durable: None when it
    is, else (the directory that needs a sync, the renamed directory that moved the entry
    there or None). A pending create moves with its directory (rules.md, FS103): each
    directory above it renamed since the create must have been synced in its new parent
    after that rename, besides the entry's own directory after the create."""
    since = state.created_index
    directory = os.path.dirname(state.path)
    parent = files.get(directory)
    if parent is None or parent.last_sync_index <= since:
        return directory, None
    while directory not in ("/", ""):
        above = os.path.dirname(directory)
        if parent is not None and parent.renamed_index > since:
            grandparent = files.get(above)
            if grandparent is None or grandparent.last_sync_index <= parent.renamed_index:
                return above, parent
        directory, parent = above, files.get(above)
    return None


class UnlinkUnsyncedDir(PendingDirectoryRule):
    code, name, severity = "FS104", "unlink-unsynced-dir", "warning"
    summary = "a file the tree made durable is removed (a commit point) and its directory never fsynced afterwards"
    fix = "after removing the file, fsync its parent directory before relying on the removal"
    action, unit, intent_gated = "removed", "removals", True


class UnsyncedAtExit(Rule):
    code, name, severity = "FS105", "unsynced-at-exit", "info"
    summary = "observation ended with written data that was never fsynced"
    fix = "fsync the file (after flushing the runtime's buffer) before exiting or reporting success"

    def on_finish(self, engine):
        # Where a misused mechanism explains the dirty data, that rule's finding says it better.
        skip_sfr, skip_odirect, skip_map = (engine.enabled(c) for c in ("FS301", "FS302", "FS303"))
        for state in engine.files.values():
            if state.is_dir or not state.in_scope or not state.dirty_unreported:
                continue
            if ((skip_sfr and state.sfr_event) or (skip_odirect and state.odirect_event)
                    or (skip_map and state.map_event)):
                continue
            if state.map_event is None and not state.dirty_bytes:
                # Not a byte written: an O_TRUNC open of a lock file, an ftruncate to the
                # size it had (the tracer cannot tell), fallocate. No dirty data (rules.md).
                continue
            last = state.dirty_last or state.map_event
            if state.dirty_bytes:
                writes = f" in {state.dirty_writes} writes" if state.dirty_writes else ""
                left = f"{nbytes(state.dirty_bytes)}{writes} to {state.path}"
            else:
                left = f"what it wrote through a shared mapping of {state.path}"
            engine.report(self.code, last, state.path,
                          f"{engine.process_label(last['pid'], last)} left {left} unsynced at the end of observation",
                          [state.dirty_first or state.map_event, last])


@dataclass(slots=True, eq=False)
class OpenReplies:
    """Replies on one connection (a process's socket fd) that went out while data their
    process wrote was dirty, not yet judged (FS106): acknowledgements, or a transaction's
    statement replies before its commit's reply."""

    acked: list                                         # (file state, its first dirty write, the send)
    barrier_threads: set = field(default_factory=set)   # threads of the process that made a barrier since


BARRIER_SYSCALLS = frozenset({"fsync", "fdatasync", "msync", "sync", "syncfs"})
# Calls that make a writer's entry (FileState.writers) without writing a byte.
NO_BYTES = frozenset({"truncate", "ftruncate", "fallocate"})


def is_barrier(event: dict) -> bool:
    """A durability barrier of its process (transitions.process_barrier's, and sync/syncfs)."""
    syscall = event["syscall"]
    if syscall in WRITE_SYSCALLS:
        ret = event.get("ret")
        return event.get("kind") == "file" and is_synced_write(event) and isinstance(ret, int) and ret > 0
    if not succeeded(event):
        return False
    if syscall == "msync":
        return "MS_SYNC" in event.get("flags", ())
    return syscall in ("sync", "syncfs") or bool(event.get("path"))


class AckBeforeDurable(Rule):
    code, name, severity = "FS106", "ack-before-durable", "warning"
    summary = "a process answers on a socket while data it wrote and means to make durable is not yet fsynced"
    fix = "fsync the data (and the directory, for new names) before sending the reply"
    syscalls = WRITE_SYSCALLS | COPY_SYSCALLS | SEND_SYSCALLS | BARRIER_SYSCALLS | {"close", "exit"}
    idle_syscalls = BARRIER_SYSCALLS | {"close", "exit"}    # until a reply is open (engine.replies)

    def on_event(self, engine, event):
        """A send to the outside world acknowledges what its own process wrote since its
        latest durability barrier and is still dirty (FileState.writers): not what
        other processes wrote (a client's request is no ack of a server's files), and
        not what a barrier in between put past a commit point. Only writes that
        completed before the send: event order is the kernel's, a write run's first
        write completed at its t_first, and another thread's write may be handed on
        before a send that preceded it.

        Such a send is judged by what follows on its connection (engine.replies): the
        process's next send there after a barrier made by the thread that sends it
        (a commit is on its request's path; Redis's everysec fsync on a background
        thread is none). When that send finds nothing of the process dirty, it is a
        commit's reply (PostgreSQL: the WAL fdatasync'ed at COMMIT, then "COMMIT"),
        and the replies before it were a transaction's statements ("UPDATE 1" after
        a heap page write), which promise nothing durable. When it finds new dirty
        data (a server that fsyncs after each reply and goes on to the next
        request), or the connection closes, or the process exits, or observation
        ends first, they were acknowledgements. The FS106 page says why this and
        not the other triggers weighed (the sender never syncs the file; WAL before
        data), and how it departs from rules.md's."""
        syscall = event["syscall"]
        if syscall == "close":
            if event.get("kind") == "socket":
                self._connection_ended(engine, event["pid"], event.get("fd"))
            return
        if syscall == "exit":
            for fd in list(engine.replies.get(event["pid"], ())):
                self._connection_ended(engine, event["pid"], fd)
            return
        if is_barrier(event):
            connections = engine.replies.get(event["pid"])
            if connections:
                for replies in connections.values():
                    replies.barrier_threads.add(event.get("tid"))
            return
        if not is_send(event):
            return
        pid = event["pid"]
        files = engine.written_by.get(pid)
        # A run of sends (the probe folds one thread's full sends on one fd while no
        # event of its process comes between: docs/events.md) is judged as its first send, at t_first: what was dirty
        # then decides whether it is a commit's reply. Another thread's write may
        # complete before a later send of the run: evaluated again at the run's last
        # send (t), such a write is still acknowledged. Lost: a write of another
        # thread acknowledged by a send in the middle of the run and made durable by
        # a barrier (an O_SYNC write: any other event ends the run) before its end.
        dirty, dirty_later = [], []
        if files:
            first_sent, last_sent, tid = event.get("t_first", event["t"]), event["t"], event["tid"]
            for state in files:
                first, last = span(entry_of(state, pid))
                # A byte written, as for FS105: a truncation alone (PostgreSQL's of an obsolete
                # relation file after a commit) is no data a reply acknowledges.
                if not (state.in_scope and (first["syscall"] not in NO_BYTES or last["syscall"] not in NO_BYTES)
                        and engine.files.get(state.path) is state):
                    continue
                if first["tid"] == tid or first.get("t_first", first["t"]) < first_sent:
                    dirty.append(state)
                elif first.get("t_first", first["t"]) < last_sent:
                    dirty_later.append(state)
        connections = engine.replies.get(pid)
        replies = connections.get(event.get("fd")) if connections else None
        if replies is not None and event.get("tid") in replies.barrier_threads:
            self._connection_ended(engine, pid, event.get("fd"), committed=not any(state.is_data for state in dirty))
            replies = None
        for state in dirty + dirty_later:
            entry = writer(state, pid)
            if entry.reported is entry.last:
                continue
            entry.reported = entry.last     # judged with this send: again only once it has written since
            if replies is None:
                replies = OpenReplies([])
                engine.replies.setdefault(pid, {})[event.get("fd")] = replies
                engine.wake(self.code)
            replies.acked.append((state, entry.first, kept(event)))

    def _connection_ended(self, engine, pid, fd, committed=False):
        """The open replies of pid on fd are judged: statements of a transaction whose
        commit's reply this is (committed), else acknowledgements."""
        connections = engine.replies.get(pid)
        replies = connections.pop(fd, None) if connections else None
        if connections is not None and not connections:
            del engine.replies[pid]
        if replies is None or committed:
            return
        for state, first, send in replies.acked:
            if engine.has_intent(state) and state.is_data:
                self._report(engine, state, first, send)
            else:
                # Intent may still show up later (the fsync after the reply): decide at the end.
                acked = self.recall(state)
                if acked is None:
                    self.remember(state, {pid: (first, send)})
                else:
                    acked.setdefault(pid, (first, send))

    def on_finish(self, engine):
        for pid, connections in list(engine.replies.items()):
            for fd in list(connections):
                self._connection_ended(engine, pid, fd)
        for state in engine.files.values():
            acked = self.recall(state)
            if acked is not None and engine.has_intent(state) and state.is_data:
                for dirty, send in acked.values():
                    self._report(engine, state, dirty, send)

    def _report(self, engine, state, dirty, send):
        engine.report(self.code, send, state.path,
                      f"{engine.process_label(send['pid'], send)} sent data to a socket while data it wrote "
                      f"to {state.path} was not yet fsynced",
                      [dirty, send])


UNSEEN_SIZE = "the file existed before observation: its old size is unseen, so it counts as non-empty"


class TruncateInPlace(Rule):
    code, name, severity = "FS107", "truncate-in-place", "warning"
    summary = "an existing non-empty file is truncated and rewritten in place"
    fix = "write the new content to a temporary file, fsync it, rename it over the original, fsync the directory"
    syscalls = OPEN_SYSCALLS | WRITE_SYSCALLS | COPY_SYSCALLS | {"truncate", "ftruncate"}
    idle_syscalls = WRITE_SYSCALLS | COPY_SYSCALLS      # until a file is marked truncated

    def on_event(self, engine, event):
        """A truncation to 0 of a file that held data (base.held_data: an O_TRUNC open,
        or the editor's save, an open without it and ftruncate(fd, 0)), then a write."""
        if not succeeded(event) or not event.get("path"):
            return
        syscall = event["syscall"]
        if syscall in OPEN_SYSCALLS or syscall in ("truncate", "ftruncate"):
            if event.get("kind", "file") != "file":
                return
            if syscall in OPEN_SYSCALLS and "O_TRUNC" not in event.get("flags", ()):
                return
            if syscall not in OPEN_SYSCALLS and event.get("length") != 0:
                return
            state = engine.node(event["path"])
            if not state.in_scope or state.is_dir:
                return
            if not held_data(state, event):
                return      # it was empty (a truncation before it, not yet rewritten, stays marked)
            size = event.get("size_before")
            if size is not None:
                self.remember(state, (kept(event), f"holding {nbytes(size)}"))
            elif unseen_size(state, event):
                # The tracer cannot see its old size: say so in the evidence as well.
                self.remember(state, (kept({**event, "note": UNSEEN_SIZE}), "an existing file"))
            else:
                self.remember(state, (kept(event), "holding data it wrote"))
            engine.wake(self.code)
            return
        if event.get("kind") != "file" or not event.get("ret"):
            return
        state = engine.files.get(event["path"])
        truncated = self.recall(state) if state is not None else None
        if truncated is None:
            return
        self.forget(state)
        truncation, held = truncated
        engine.report(self.code, event, state.path,
                      f"{engine.process_label(event['pid'], event)} truncated {state.path} ({held}) "
                      f"and rewrote it in place",
                      [truncation, event])


RULES = [RenameUnsyncedData(), RenameUnsyncedDir(), CreateUnsyncedDir(), UnlinkUnsyncedDir(),
         UnsyncedAtExit(), AckBeforeDurable(), TruncateInPlace()]
