"""Decoders of the calls that change names in the tree: rename, link,
symlink, unlink, mkdir, mknod (and their *at forms), and chdir, which
changes where relative names start. Open fds follow a renamed file."""

from __future__ import annotations

import stat

from ..syscalls import AT_FDCWD, AT_REMOVEDIR, RENAME_FLAGS, flag_names
from .fdtable import ProcessTable, s32

# mknod's file types other than a regular file (S_IFREG, or 0): names, never files (rules.md, scope).
NODE_TYPES = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "char", stat.S_IFBLK: "block"}


class NamespaceDecoders(ProcessTable):
    """rename, renameat, renameat2, link, linkat, symlink, symlinkat, unlink, unlinkat, rmdir, mkdir,
    mkdirat, mknod, mknodat, chdir, fchdir."""

    def _two_paths(self, proc, event, dirfd1, p1, dirfd2, p2, out):
        tid, t = event["tid"], event["t"]
        event["path"] = self._abs(proc, dirfd1, p1, tid, t, out)
        event["path2"] = self._abs(proc, dirfd2, p2, tid, t, out)

    def _on_rename(self, proc, event, ok, ret, a, path, path2, out):
        self._two_paths(proc, event, AT_FDCWD, path, AT_FDCWD, path2, out)
        self._moved(proc, event, ok)

    def _on_renameat(self, proc, event, ok, ret, a, path, path2, out):
        self._two_paths(proc, event, s32(a[0]), path, s32(a[2]), path2, out)
        if event["syscall"] == "renameat2":
            event["flags"] = flag_names(a[4], RENAME_FLAGS)
        self._moved(proc, event, ok)

    _on_renameat2 = _on_renameat

    def _moved(self, proc, event, ok):
        """Open fds follow their file across a rename (in every traced process)."""
        if not ok:
            return
        old, new = event["path"], event["path2"]
        prefix = old + "/"
        for other in self.procs.values():
            for entry in other.fds.values():
                if entry.path == old:
                    entry.path = new
                elif entry.path.startswith(prefix):
                    entry.path = new + entry.path[len(old):]

    def _on_link(self, proc, event, ok, ret, a, path, path2, out):
        self._two_paths(proc, event, AT_FDCWD, path, AT_FDCWD, path2, out)

    def _on_linkat(self, proc, event, ok, ret, a, path, path2, out):
        self._two_paths(proc, event, s32(a[0]), path, s32(a[2]), path2, out)

    def _on_symlink(self, proc, event, ok, ret, a, path, path2, out):
        event.update(target=path, path2=self._abs(proc, AT_FDCWD, path2, event["tid"], event["t"], out))

    def _on_symlinkat(self, proc, event, ok, ret, a, path, path2, out):
        event.update(target=path, path2=self._abs(proc, s32(a[1]), path2, event["tid"], event["t"], out))

    def _on_unlink(self, proc, event, ok, ret, a, path, path2, out):
        event["path"] = self._abs(proc, AT_FDCWD, path, event["tid"], event["t"], out)

    _on_rmdir = _on_mkdir = _on_unlink

    def _on_mknod(self, proc, event, ok, ret, a, path, path2, out):
        event.update(path=self._abs(proc, AT_FDCWD, path, event["tid"], event["t"], out),
                     type=NODE_TYPES.get(stat.S_IFMT(a[1]), "file"))

    def _on_unlinkat(self, proc, event, ok, ret, a, path, path2, out):
        event["path"] = self._abs(proc, s32(a[0]), path, event["tid"], event["t"], out)
        if a[2] & AT_REMOVEDIR:
            event["flags"] = ["AT_REMOVEDIR"]

    def _on_mkdirat(self, proc, event, ok, ret, a, path, path2, out):
        event["path"] = self._abs(proc, s32(a[0]), path, event["tid"], event["t"], out)

    def _on_mknodat(self, proc, event, ok, ret, a, path, path2, out):
        event.update(path=self._abs(proc, s32(a[0]), path, event["tid"], event["t"], out),
                     type=NODE_TYPES.get(stat.S_IFMT(a[2]), "file"))

    def _on_chdir(self, proc, event, ok, ret, a, path, path2, out):
        new = self._abs(proc, AT_FDCWD, path, event["tid"], event["t"], out)
        if ok:
            proc.cwd = new
        event["path"] = new

    def _on_fchdir(self, proc, event, ok, ret, a, path, path2, out):
        entry = self._fd_event(proc, event, s32(a[0]), out)
        if ok:
            proc.cwd = entry.path
