"""FS101-FS107: data and namespace rules."""

from __future__ import annotations

import os.path

from .base import (
    COPY_SYSCALLS, LINK_SYSCALLS, OPEN_SYSCALLS, RENAME_SYSCALLS, SEND_SYSCALLS, WRITE_SYSCALLS,
    Rule, discards_content, is_send, nbytes, succeeded,
)


def _unsynced(state) -> str:
    if state.dirty_bytes:
        return f"{nbytes(state.dirty_bytes)} written to it were not fsynced"
    return "its changes were not fsynced"


class RenameUnsyncedData(Rule):
    code, name, severity = "FS101", "rename-unsynced-data", "error"
    summary = "a rename or link publishes a file whose written data was never fsynced"
    fix = ("flush the runtime's buffer and fsync the file before renaming it over the target; "
           "then fsync the target's directory")
    syscalls = RENAME_SYSCALLS | LINK_SYSCALLS

    def on_event(self, engine, event):
        if not succeeded(event):
            return
        source = engine.files.get(event.get("path") or "")
        if source is None or source.is_dir or not source.in_scope or not source.is_dirty:
            return
        source.published_dirty = source.dirty_last
        # link() adds a name and never replaces one; rename() may replace.
        published = "linked {} as {}" if event["syscall"] in LINK_SYSCALLS else "renamed {} over {}"
        path, target = source.path, event.get("path2")
        engine.report(self.code, event, path,
                      f"{engine.process_label(event['pid'])} {published.format(path, target)} while {_unsynced(source)}",
                      [source.dirty_first, source.dirty_last, event], target_path=target)


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
                if self.intent_gated and not (entries.intent or (entries.data and directory.child_intent)):
                    continue
                times = f" ({entries.count} {self.unit})" if entries.count > 1 else ""
                engine.report(self.code, entries.last, directory.path,
                              f"{engine.process_label(pid)} {self.action} {entries.name}{times} "
                              f"but never fsynced the directory {directory.path} afterwards",
                              [entries.first, entries.last], target_path=entries.name, pid=pid,
                              count=entries.count, role="data" if entries.data else None)


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
            parent = files.get(os.path.dirname(state.path))
            if not durable or (parent is not None and parent.last_sync_index > state.created_index):
                continue
            engine.report(self.code, created, state.path,
                          f"{engine.process_label(created['pid'])} created {state.path} and made it durable "
                          f"but never fsynced its directory {os.path.dirname(state.path)}",
                          [created])


class UnlinkUnsyncedDir(PendingDirectoryRule):
    code, name, severity = "FS104", "unlink-unsynced-dir", "warning"
    summary = "an unlink or rmdir whose directory is never fsynced afterwards"
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
            if (state.map_event is None and not state.dirty_writes and state.dirty_first["syscall"] in OPEN_SYSCALLS
                    and state.dirty_last["syscall"] in OPEN_SYSCALLS):
                continue    # emptied by O_TRUNC opens and never written: no dirty data (a lock file)
            last = state.dirty_last or state.map_event
            writes = f" in {state.dirty_writes} writes" if state.dirty_writes else ""
            engine.report(self.code, last, state.path,
                          f"{engine.process_label(last['pid'])} left {nbytes(state.dirty_bytes)}{writes} "
                          f"to {state.path} unsynced at the end of observation",
                          [state.dirty_first or state.map_event, last])


class AckBeforeDurable(Rule):
    code, name, severity = "FS106", "ack-before-durable", "warning"
    summary = "the tree answers on a socket while data it means to make durable is not yet fsynced"
    fix = "fsync the data (and the directory, for new names) before sending the reply"
    syscalls = WRITE_SYSCALLS | COPY_SYSCALLS | SEND_SYSCALLS

    def on_event(self, engine, event):
        if not is_send(event) or not engine.dirty_since_send:
            return
        for state in engine.dirty_since_send:
            if not state.in_scope or not state.is_dirty:
                continue
            dirty = state.dirty_first or state.map_event
            if engine.has_intent(state) and state.is_data:
                self._report(engine, state, dirty, event)
            elif self.recall(state) is None:
                # Intent may still show up later (the fsync after the reply): decide at the end.
                self.remember(state, (dirty, event))
        engine.dirty_since_send.clear()

    def on_finish(self, engine):
        for state in engine.files.values():
            acked = self.recall(state)
            if acked is not None and engine.has_intent(state) and state.is_data:
                self._report(engine, state, *acked)

    def _report(self, engine, state, dirty, send):
        engine.report(self.code, send, state.path,
                      f"{engine.process_label(send['pid'])} sent data to a socket while data written "
                      f"to {state.path} was not yet fsynced",
                      [dirty, send])


class TruncateInPlace(Rule):
    code, name, severity = "FS107", "truncate-in-place", "warning"
    summary = "an existing non-empty file is truncated and rewritten in place"
    fix = "write the new content to a temporary file, fsync it, rename it over the original, fsync the directory"
    syscalls = OPEN_SYSCALLS | WRITE_SYSCALLS | COPY_SYSCALLS | {"truncate", "ftruncate"}

    def on_event(self, engine, event):
        if not succeeded(event) or not event.get("path"):
            return
        syscall = event["syscall"]
        if syscall in OPEN_SYSCALLS or syscall in ("truncate", "ftruncate"):
            if not discards_content(event) or event.get("kind", "file") != "file":
                return
            if syscall in OPEN_SYSCALLS and "O_TRUNC" not in event.get("flags", ()):
                return
            if syscall not in OPEN_SYSCALLS and event.get("length") != 0:
                return
            state = engine.node(event["path"])
            if state.in_scope and not state.is_dir:
                self.remember(state, event)
            return
        if event.get("kind") != "file" or not event.get("ret"):
            return
        state = engine.files.get(event["path"])
        truncated = self.recall(state) if state is not None else None
        if truncated is None:
            return
        self.forget(state)
        size = truncated.get("size_before")
        held = f"holding {nbytes(size)}" if size is not None else "an existing file"
        engine.report(self.code, event, state.path,
                      f"{engine.process_label(event['pid'])} truncated {state.path} ({held}) "
                      f"and rewrote it in place",
                      [truncated, event])


RULES = [RenameUnsyncedData(), RenameUnsyncedDir(), CreateUnsyncedDir(), UnlinkUnsyncedDir(),
         UnsyncedAtExit(), AckBeforeDurable(), TruncateInPlace()]
