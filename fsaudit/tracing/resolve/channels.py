"""Decoders of the calls on fds that are not files: sockets, pipes, and the
kernel's asynchronous I/O (io_uring_setup, io_submit); bind, for the names unix
sockets take in the filesystem."""

from __future__ import annotations

from ..syscalls import AT_FDCWD, family_name
from .fdtable import Fd, ProcessTable, s32


class ChannelDecoders(ProcessTable):
    """socket, accept, accept4, socketpair, pipe, pipe2, sendto, sendmsg, sendmmsg, bind, io_uring_setup,
    io_submit. A socket's family (what FS106 tells the outside world by) is socket()'s and
    socketpair()'s first argument; an accepted socket has its listener's."""

    def _new_fd(self, proc, event, ok, ret, kind, family=None):
        if ok:
            proc.fds[ret] = Fd(f"{kind}:{ret}", kind, family=family)
            event["fd"] = ret
            if family is not None:
                event["family"] = family

    def _on_socket(self, proc, event, ok, ret, a, path, path2, out):
        self._new_fd(proc, event, ok, ret, "socket", family_name(s32(a[0])))

    def _on_accept(self, proc, event, ok, ret, a, path, path2, out):
        listener = self._fd(proc, s32(a[0]), event["tid"], event["t"], out)
        self._new_fd(proc, event, ok, ret, "socket", listener.family)

    _on_accept4 = _on_accept

    def _on_io_uring_setup(self, proc, event, ok, ret, a, path, path2, out):
        self._new_fd(proc, event, ok, ret, "anon")

    def _on_io_submit(self, proc, event, ok, ret, a, path, path2, out):
        event["ctx"] = a[0]

    def _fd_pair(self, proc, event, ok, pair, kind, family=None):
        """pipe/socketpair: the probe read the two new fds from user memory."""
        if ok:
            fds = [s32(pair), s32(pair >> 32)]
            for fd in fds:
                proc.fds[fd] = Fd(f"{kind}:{fd}", kind, family=family)
            event["fds"] = fds
            if family is not None:
                event["family"] = family

    def _on_pipe(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_pair(proc, event, ok, a[5], "pipe")

    _on_pipe2 = _on_pipe

    def _on_socketpair(self, proc, event, ok, ret, a, path, path2, out):
        self._fd_pair(proc, event, ok, a[5], "socket", family_name(s32(a[0])))

    def _on_sendto(self, proc, event, ok, ret, a, path, path2, out):
        entry = self._fd(proc, s32(a[0]), event["tid"], event["t"], out)
        event.update(fd=s32(a[0]), kind=entry.kind)
        if entry.family is not None:
            event["family"] = entry.family

    _on_sendmsg = _on_sendmmsg = _on_sendto

    def _on_bind(self, proc, event, ok, ret, a, path, path2, out):
        """The probe reads the name of a unix socket bound in the filesystem: `path`, absolute."""
        event["fd"] = s32(a[0])
        if path:
            event["path"] = self._abs(proc, AT_FDCWD, path, event["tid"], event["t"], out)
