"""FS301-FS304: durability mechanisms that do not do what they seem to."""

from __future__ import annotations

from .base import LINK_SYSCALLS, RENAME_SYSCALLS, SYNC_FILE_RANGE, Rule, succeeded


class SyncFileRangeNotDurable(Rule):
    code, name, severity = "FS301", "sync-file-range-not-durable", "warning"
    summary = "sync_file_range is the only barrier: it flushes neither metadata nor the device cache"
    fix = "use fdatasync (or fsync) where the data must survive a crash; keep sync_file_range only to start write-back early"
    syscalls = idle_syscalls = RENAME_SYSCALLS | LINK_SYSCALLS   # until a file has an sfr_event
    woken_by = frozenset({SYNC_FILE_RANGE})

    def on_event(self, engine, event):
        state = engine.files.get(event.get("path") or "")
        if succeeded(event) and state is not None and state.in_scope and state.is_dirty and state.sfr_event:
            state.published_dirty = state.dirty_last
            self._report(engine, state, event, f"{event['syscall']} of it")

    def on_finish(self, engine):
        for state in engine.files.values():
            if state.sfr_event is not None and state.in_scope and state.dirty_unreported:
                self._report(engine, state, None, "the end of observation")

    def _report(self, engine, state, event, until):
        sfr = state.sfr_event
        engine.report(self.code, event or sfr, state.path,
                      f"{engine.process_label(sfr['pid'], sfr)} used only sync_file_range on {state.path} "
                      f"before {until}, without fsync or fdatasync",
                      [state.dirty_first, sfr, event])


class ODirectWithoutSync(Rule):
    code, name, severity = "FS302", "odirect-without-sync", "warning"
    summary = "O_DIRECT writes without O_SYNC/O_DSYNC and without a later fsync/fdatasync"
    fix = "open with O_DIRECT|O_DSYNC, or fdatasync the file after the O_DIRECT writes"

    def on_finish(self, engine):
        for state in engine.files.values():
            first = state.odirect_event
            if first is not None and state.in_scope:
                engine.report(self.code, first, state.path,
                              f"{engine.process_label(first['pid'], first)} wrote {state.path} with O_DIRECT "
                              f"and never made it durable with O_DSYNC, fsync or fdatasync",
                              [first, state.dirty_last])


class MmapWithoutMsync(Rule):
    code, name, severity = "FS303", "mmap-without-msync", "warning"
    summary = "a writable shared mapping is unmapped, or the tree ends, without msync(MS_SYNC) or fsync"
    fix = "call msync(addr, length, MS_SYNC) (or fsync the file) before munmap and before relying on the data"
    syscalls = frozenset({"munmap"})

    def on_event(self, engine, event):
        state = engine.files.get(event.get("path") or "")
        if state is not None and state.map_event is not None and state.in_scope:
            self._report(engine, state, event, "unmapped it")

    def on_finish(self, engine):
        for state in engine.files.values():
            if state.map_event is not None and state.in_scope:
                self._report(engine, state, None, "reached the end of observation")

    def _report(self, engine, state, event, what):
        mapped = state.map_event
        engine.report(self.code, event or mapped, state.path,
                      f"{engine.process_label(mapped['pid'], mapped)} mapped {state.path} shared and writable and "
                      f"{what} without msync(MS_SYNC) or fsync",
                      [mapped, event])


class WholeFsSync(Rule):
    code, name, severity = "FS304", "whole-fs-sync", "info"
    summary = "sync() or syncfs() used as the barrier: it flushes every file, and sync() reports no error"
    fix = "fsync (or fdatasync) the files you wrote and their directories instead of sync()/syncfs()"
    syscalls = frozenset({"sync", "syncfs"})

    def on_event(self, engine, event):
        if succeeded(event):
            where = f" on {event['path']}" if event.get("path") else ""
            engine.report(self.code, event, event.get("path"),
                          f"{engine.process_label(event['pid'], event)} called {event['syscall']}(){where} "
                          f"as a barrier instead of fsyncing its own files",
                          [event])


RULES = [SyncFileRangeNotDurable(), ODirectWithoutSync(), MmapWithoutMsync(), WholeFsSync()]
