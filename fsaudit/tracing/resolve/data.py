"""Decoders of the calls that move or settle a file's data: writes, syncs,
truncation and allocation, mappings (mmap, msync, munmap) and in-kernel
copies (sendfile, copy_file_range, splice)."""

from __future__ import annotations

from ..syscalls import AT_FDCWD, MAP_FLAGS, MS_FLAGS, PROT_EXEC, PROT_FLAGS, RWF_FLAGS, SFR_FLAGS, flag_names
from .fdtable import ProcessTable, s32


class DataDecoders(ProcessTable):
    """write, lseek, pwrite64, writev, pwritev, pwritev2, fsync, fdatasync, syncfs, sync_file_range, ftruncate,
    truncate, fallocate, mmap, msync, munmap, sendfile, copy_file_range, splice."""

    def _on_write(self, proc, event, ok, ret, a, path, path2, out):
        entry = self._fd_event(proc, event, s32(a[0]), out)
        if event["syscall"] in ("write", "pwrite64"):
            event["count"] = a[2]
        else:
            event["iovcnt"] = a[2]
        if event["syscall"] == "pwritev2":
            event["rwf"] = flag_names(a[5], RWF_FLAGS)
        self._fd_modes(entry, event)

    _on_pwrite64 = _on_writev = _on_pwritev = _on_pwritev2 = _on_write

    def _on_lseek(self, proc, event, ok, ret, a, path, path2, out):
        # Only with `fsaudit crash` (CAPTURE_DATA): where the next plain write starts.
        self._fd_event(proc, event, s32(a[0]), out)
        event.update(offset=a[1], whence=a[2])

    def _on_fsync(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)

    _on_fdatasync = _on_fsync

    def _on_syncfs(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)

    def _on_sync_file_range(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)
        event.update(offset=a[1], nbytes=a[2], flags=flag_names(a[3], SFR_FLAGS))

    def _on_ftruncate(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)
        event["length"] = a[1]

    def _on_truncate(self, proc, event, ok, ret, a, path, path2, out):
        event.update(path=self._abs(proc, AT_FDCWD, path, event["tid"], event["t"], out), length=a[1])

    def _on_fallocate(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)
        event.update(mode=a[1], offset=a[2], length=a[3])

    def _on_mmap(self, proc, event, ok, ret, a, path, path2, out):
        fd = s32(a[4])
        event.update(length=a[1], prot=flag_names(a[2], PROT_FLAGS), flags=flag_names(a[3] & 0x3F, MAP_FLAGS))
        if fd >= 0:
            self._fd_event(proc, event, fd, out)
            if ok:
                proc.maps[ret] = (a[1], event["path"])
                if a[2] & PROT_EXEC and proc.space is not None:    # code, for --stacks
                    proc.space.map(ret, a[1], event["path"], a[5])
                if (a[2] & PROT_EXEC and proc.image is not None and proc.image.library_mapped(event["path"])
                        and proc.image.decided):   # a library's code, dlopen'ed late
                    self._runtime(proc, event["tid"], event["t"], out)
        if ok:
            event["addr"] = ret
            event["ret"] = 0

    def _mapped_path(self, proc, addr):
        for start, (length, path) in proc.maps.items():
            if start <= addr < start + length:
                return path
        return None

    def _on_msync(self, proc, event, ok, ret, a, path, path2, out):
        event.update(addr=a[0], length=a[1], flags=flag_names(a[2], MS_FLAGS))
        mapped = self._mapped_path(proc, a[0])
        if mapped:
            event["path"] = mapped

    def _on_munmap(self, proc, event, ok, ret, a, path, path2, out):
        event.update(addr=a[0], length=a[1])
        mapped = self._mapped_path(proc, a[0])
        if mapped:
            event["path"] = mapped
            if ok:
                proc.maps.pop(a[0], None)
        if ok and proc.space is not None:
            proc.space.unmap(a[0], a[1])

    def _on_sendfile(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[0]), out)
        event.update(fd_in=s32(a[1]), bytes=max(ret, 0))

    def _on_copy_file_range(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_event(proc, event, s32(a[2]), out)
        event.update(fd_in=s32(a[0]), bytes=max(ret, 0))

    _on_splice = _on_copy_file_range
