"""FS201-FS204: error handling (fsyncgate)."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import kept
from .base import FAILED_SYNC, LINK_SYSCALLS, RENAME_SYSCALLS, WRITE_SYSCALLS, Rule, nbytes

SYNC_SYSCALLS = frozenset({"fsync", "fdatasync", "msync", "sync_file_range"})
WRITE_ERRORS = frozenset({"EIO", "ENOSPC", "EDQUOT", "EFBIG"})
CLOSE_ERRORS = frozenset({"EIO", "ENOSPC", "EDQUOT"})


@dataclass(slots=True)
class LostWrite:
    """FS203's mark: the first failed or short write since the file was whole, and the bytes still missing."""

    first_failure: dict
    lost_bytes: int


class FsyncRetryAfterError(Rule):
    code, name, severity = "FS201", "fsync-retry-after-error", "error"
    summary = "a failed fsync is retried: the retry can succeed on data the kernel already dropped"
    fix = ("treat a failed fsync as fatal: stop (or crash) and recover from a log or rewrite the data "
           "from a copy you still hold; never just call fsync again")
    syscalls = idle_syscalls = SYNC_SYSCALLS     # until a sync fails (state.failed_sync)
    woken_by = frozenset({FAILED_SYNC})

    def on_event(self, engine, event):
        state = engine.files.get(event.get("path") or "")
        if state is None or state.failed_sync is None or not state.in_scope:
            return
        failed = state.failed_sync
        state.failed_sync_reported = True
        engine.report(self.code, event, state.path,
                      f"{engine.process_label(event['pid'], event)} called {event['syscall']} on {state.path} again "
                      f"after {failed['syscall']} failed with {failed['ret']}",
                      [failed, event])


class FsyncErrorIgnored(Rule):
    code, name, severity = "FS202", "fsync-error-ignored", "error"
    summary = "a failed fsync is ignored: the tree keeps writing, renames the file, or exits 0"
    fix = ("check the result of fsync; on failure stop with a non-zero status (or crash) instead of "
           "writing on, renaming the file into place or reporting success")
    syscalls = idle_syscalls = WRITE_SYSCALLS | RENAME_SYSCALLS | LINK_SYSCALLS   # as FS201
    woken_by = frozenset({FAILED_SYNC})

    def on_event(self, engine, event):
        state = engine.files.get(event.get("path") or "")
        if state is None or state.failed_sync is None or state.failed_sync_reported or not state.in_scope:
            return
        state.failed_sync_reported = True
        verb = "kept writing" if event["syscall"] in WRITE_SYSCALLS else f"called {event['syscall']} on"
        self._report(engine, state, event, f"{verb} {state.path}")

    def on_finish(self, engine):
        if not engine.tree_exited_ok:
            return
        for state in engine.files.values():
            if state.failed_sync is not None and not state.failed_sync_reported and state.in_scope:
                self._report(engine, state, None, "exited with status 0")

    def _report(self, engine, state, event, what):
        failed = state.failed_sync
        engine.report(self.code, event or failed, state.path,
                      f"{engine.process_label(failed['pid'], failed)} {what} after {failed['syscall']} of "
                      f"{state.path} failed with {failed['ret']}",
                      [failed, event])


class WriteErrorIgnored(Rule):
    code, name, severity = "FS203", "write-error-ignored", "error"
    summary = "a failed or short write is never redone, yet the file is synced or the tree exits 0"
    fix = "check every write's result; on a short write write the rest, on an error stop with a non-zero status"
    syscalls = WRITE_SYSCALLS | {"fsync", "fdatasync"}
    idle_syscalls = frozenset({"fsync", "fdatasync"})   # until a file has lost a write (its mark)

    def on_event(self, engine, event):
        path = event.get("path")
        if not path or event.get("kind") not in ("file", None):
            return
        ret = event.get("ret")
        if event["syscall"] in WRITE_SYSCALLS:
            count = event.get("count")
            if isinstance(ret, str):
                if ret in WRITE_ERRORS:
                    self._lost(engine, path, event, count or 1)
            elif count is not None and 0 <= ret < count:
                self._lost(engine, path, event, count - ret)
            elif ret:
                state = engine.files.get(path)
                loss = self.recall(state) if state is not None else None
                if loss is not None:
                    # Bytes written after the failure are taken as the program redoing what was lost.
                    loss.lost_bytes -= ret
                    if loss.lost_bytes <= 0:
                        self.forget(state)
            return
        state = engine.files.get(path)
        if state is not None and ret == 0 and self.recall(state) is not None:
            self._report(engine, state, event, f"then {event['syscall']}ed it successfully")

    def _lost(self, engine, path, event, lost):
        state = engine.node(path)
        if state.in_scope and not state.is_dir:
            loss = self.recall(state)
            if loss is None:
                self.remember(state, LostWrite(kept(event), lost))
                engine.wake(self.code)
            else:
                loss.lost_bytes += lost

    def on_finish(self, engine):
        if not engine.tree_exited_ok:
            return
        for state in engine.files.values():
            if self.recall(state) is not None:
                self._report(engine, state, None, "then exited with status 0")

    def _report(self, engine, state, event, what):
        loss = self.recall(state)
        failed = loss.first_failure
        ret = failed["ret"]
        how = f"failed with {ret}" if isinstance(ret, str) else f"was short ({ret} of {failed.get('count')})"
        engine.report(self.code, event or failed, state.path,
                      f"{engine.process_label(failed['pid'], failed)} lost {nbytes(loss.lost_bytes)} to {state.path} "
                      f"when {failed['syscall']} {how}, never wrote them again, {what}",
                      [failed, event])
        self.forget(state)


class CloseErrorIgnored(Rule):
    code, name, severity = "FS204", "close-error-ignored", "info"
    summary = "close() of a written file fails (NFS, FUSE) and the tree still exits 0"
    fix = "check close()'s result on written files: on NFS and FUSE it reports write-back errors"
    syscalls = frozenset({"close"})

    def on_event(self, engine, event):
        if event.get("ret") not in CLOSE_ERRORS:
            return
        state = engine.files.get(event.get("path") or "")
        if state is not None and state.in_scope and state.writes and self.recall(state) is None:
            self.remember(state, kept(event))

    def on_finish(self, engine):
        if not engine.tree_exited_ok:
            return
        for state in engine.files.values():
            failed = self.recall(state)
            if failed is not None:
                engine.report(self.code, failed, state.path,
                              f"{engine.process_label(failed['pid'], failed)} exited 0 although close() of "
                              f"{state.path} failed with {failed['ret']}",
                              [failed])


RULES = [FsyncRetryAfterError(), FsyncErrorIgnored(), WriteErrorIgnored(), CloseErrorIgnored()]
