"""The x86-64 syscall numbers of everything the probe reports, and the flags
and special values of their arguments: named once, as constants for the code
that tests them and as (bit, name) tables for the names the log shows."""

from __future__ import annotations

import errno
import functools

# x86-64 syscall numbers of everything the probe reports.
SYSCALLS = {
    1: "write", 2: "open", 3: "close", 8: "lseek", 9: "mmap", 11: "munmap", 18: "pwrite64",
    20: "writev", 22: "pipe", 26: "msync", 32: "dup", 33: "dup2", 40: "sendfile",
    41: "socket", 43: "accept", 44: "sendto", 46: "sendmsg", 49: "bind", 53: "socketpair",
    56: "clone", 57: "fork", 58: "vfork", 72: "fcntl", 74: "fsync", 75: "fdatasync",
    76: "truncate", 77: "ftruncate", 80: "chdir", 81: "fchdir", 82: "rename",
    83: "mkdir", 84: "rmdir", 85: "creat", 86: "link", 87: "unlink", 88: "symlink",
    133: "mknod", 162: "sync", 206: "io_setup", 209: "io_submit", 257: "openat",
    258: "mkdirat", 259: "mknodat", 263: "unlinkat", 264: "renameat", 265: "linkat",
    266: "symlinkat", 275: "splice", 277: "sync_file_range", 285: "fallocate",
    288: "accept4", 292: "dup3", 293: "pipe2", 296: "pwritev", 306: "syncfs",
    307: "sendmmsg", 316: "renameat2", 319: "memfd_create", 326: "copy_file_range",
    328: "pwritev2", 425: "io_uring_setup", 435: "clone3", 436: "close_range",
    437: "openat2",
}

AT_FDCWD = -100                # a *at() call's dirfd for the cwd
AT_REMOVEDIR = 0x200           # unlinkat
CLONE_FILES = 0x400            # clone: the child shares the fd table
CLOSE_RANGE_CLOEXEC = 4        # close_range marks, does not close
F_DUPFD, F_SETFD, F_SETFL, F_DUPFD_CLOEXEC = 0, 2, 4, 1030   # fcntl commands
FD_CLOEXEC = 1                 # F_SETFD's flag

# open(2) flags (asm-generic/fcntl.h, as x86-64 has them).
O_ACCMODE, O_RDONLY, O_WRONLY, O_RDWR = 3, 0, 1, 2
O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NONBLOCK = 0o100, 0o200, 0o1000, 0o2000, 0o4000
O_DSYNC, O_DIRECT, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC = 0o10000, 0o40000, 0o200000, 0o400000, 0o2000000
O_SYNC = 0o4000000 | O_DSYNC          # __O_SYNC | O_DSYNC, as the kernel defines them
O_TMPFILE = 0o20000000 | O_DIRECTORY  # __O_TMPFILE | O_DIRECTORY
O_FLAGS = [
    (O_CREAT, "O_CREAT"), (O_EXCL, "O_EXCL"), (O_TRUNC, "O_TRUNC"), (O_APPEND, "O_APPEND"),
    (O_NONBLOCK, "O_NONBLOCK"), (O_DSYNC, "O_DSYNC"), (O_DIRECT, "O_DIRECT"),
    (O_DIRECTORY, "O_DIRECTORY"), (O_NOFOLLOW, "O_NOFOLLOW"), (O_CLOEXEC, "O_CLOEXEC"),
    (O_SYNC, "O_SYNC"), (O_TMPFILE, "O_TMPFILE"),
]
ACCMODES = {O_RDONLY: "O_RDONLY", O_WRONLY: "O_WRONLY", O_RDWR: "O_RDWR"}
RWF_FLAGS = [(0x1, "RWF_HIPRI"), (0x2, "RWF_DSYNC"), (0x4, "RWF_SYNC"), (0x8, "RWF_NOWAIT"), (0x10, "RWF_APPEND")]
PROT_EXEC = 4
PROT_FLAGS = [(1, "PROT_READ"), (2, "PROT_WRITE"), (PROT_EXEC, "PROT_EXEC")]
MAP_FLAGS = [(1, "MAP_SHARED"), (2, "MAP_PRIVATE"), (0x20, "MAP_ANONYMOUS"), (0x10, "MAP_FIXED")]
MS_FLAGS = [(1, "MS_ASYNC"), (2, "MS_INVALIDATE"), (4, "MS_SYNC")]
RENAME_FLAGS = [(1, "RENAME_NOREPLACE"), (2, "RENAME_EXCHANGE"), (4, "RENAME_WHITEOUT")]
# socket(2) address families by number (linux/socket.h): those the analysis tells apart
# (the outside world of FS106 is AF_INET, AF_INET6, AF_UNIX and AF_VSOCK), others by number.
AF_NAMES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET", 40: "AF_VSOCK"}
SFR_FLAGS = [(1, "SYNC_FILE_RANGE_WAIT_BEFORE"), (2, "SYNC_FILE_RANGE_WRITE"), (4, "SYNC_FILE_RANGE_WAIT_AFTER")]


_HEAVIEST_FIRST: dict[int, list] = {}   # id of a table above -> it sorted, composite flags first


def flag_names(value: int, table: list[tuple[int, str]]) -> list[str]:
    """Names of the bits set in value; composite flags (O_SYNC) win over their parts."""
    order = _HEAVIEST_FIRST.get(id(table))
    if order is None:   # sorted once per table, not per event
        order = _HEAVIEST_FIRST[id(table)] = sorted(table, key=lambda item: -bin(item[0]).count("1"))
    names, seen = [], 0
    for bit, name in order:
        if value & bit == bit and not (seen & bit == bit):
            names.append(name)
            seen |= bit
    if value & ~seen:
        names.append(hex(value & ~seen))
    return names


@functools.lru_cache(maxsize=4096)   # a program opens with a few flag values; bounded, for one that uses many
def _open_names(flags: int) -> tuple[str, ...]:
    return (ACCMODES.get(flags & O_ACCMODE, "O_ACCMODE"), *flag_names(flags & ~O_ACCMODE, O_FLAGS))


def open_flag_names(flags: int) -> list[str]:
    """The access mode's name, then flag_names' (a new list per call: each event owns its own)."""
    return list(_open_names(flags))


def family_name(domain: int) -> str:
    return AF_NAMES.get(domain, f"AF_{domain}")


def ret_value(ret: int) -> int | str:
    """A syscall return as the log shows it: the value, or the errno's name."""
    if -4096 < ret < 0:
        return errno.errorcode.get(-ret, str(ret))
    return ret
