"""What every rule is, and the event predicates rules and the engine share."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..roles import APPENDED, BORN, EMPTY, PRESENT, REWRITTEN

if TYPE_CHECKING:
    from ..engine import Engine
    from ..model import FileState, SettledFile

WRITE_SYSCALLS = frozenset({"write", "pwrite64", "writev", "pwritev", "pwritev2"})
COPY_SYSCALLS = frozenset({"sendfile", "copy_file_range", "splice"})
SEND_SYSCALLS = frozenset({"send", "sendto", "sendmsg", "sendmmsg"})
RENAME_SYSCALLS = frozenset({"rename", "renameat", "renameat2"})
LINK_SYSCALLS = frozenset({"link", "linkat"})
UNLINK_SYSCALLS = frozenset({"unlink", "unlinkat", "rmdir"})
OPEN_SYSCALLS = frozenset({"open", "openat", "openat2", "creat"})
SYNC_RWF = frozenset({"RWF_SYNC", "RWF_DSYNC"})
# What the transitions wake rules with (Rule.woken_by, Engine.wake).
FAILED_SYNC = "failed sync"             # a sync failed: a FileState's failed_sync is set
SYNC_FILE_RANGE = "sync_file_range"     # a FileState's sfr_event is set


def succeeded(event: dict) -> bool:
    ret = event.get("ret", 0)
    return isinstance(ret, int) and ret >= 0


def held_data(state: FileState | SettledFile, event: dict) -> bool:
    """Did the file hold data before this truncation (an O_TRUNC open, a truncate or
    ftruncate to 0)? A known size before says. Else, the tracer cannot see the old size:
    a file the tree saw empty (created or truncated, nothing written since) held none,
    and any other file that existed counts as holding data, one from before
    observation included (rules.md, FS107)."""
    size_before = event.get("size_before")
    if size_before is not None:
        return size_before > 0
    if state.conduct & EMPTY:
        return False
    if event["syscall"] in OPEN_SYSCALLS:
        return bool(event.get("existed") or state.conduct & PRESENT)
    return True     # truncate and ftruncate name a file that exists


def unseen_size(state: FileState | SettledFile, event: dict) -> bool:
    """held_data() said so without seeing any: the file is from before observation (its
    size is unknown to the tracer) and the tree wrote nothing to it."""
    return event.get("size_before") is None and not state.conduct & (BORN | APPENDED | REWRITTEN)


# The outside world (rules.md): netlink and packet sockets (audit records, routing) are not.
OUTSIDE_WORLD = frozenset({"AF_INET", "AF_INET6", "AF_UNIX", "AF_VSOCK"})


def is_send(event: dict) -> bool:
    """Bytes to the outside world: a send* call, or a write/sendfile/splice into a socket,
    of an inet, unix or vsock socket (or one whose family the tracer could not tell)."""
    ret = event.get("ret", 0)
    if not isinstance(ret, int) or ret <= 0:
        return False
    syscall = event["syscall"]
    if syscall not in SEND_SYSCALLS and not (
            (syscall in WRITE_SYSCALLS or syscall in COPY_SYSCALLS) and event.get("kind") == "socket"):
        return False
    family = event.get("family")
    return family is None or family in OUTSIDE_WORLD


def is_synced_write(event: dict) -> bool:
    """A write that is its own barrier: O_SYNC/O_DSYNC fd, or pwritev2 RWF_SYNC/RWF_DSYNC."""
    if event.get("o_sync"):
        return True
    rwf = event.get("rwf")
    return bool(rwf) and not SYNC_RWF.isdisjoint(rwf)


def nbytes(count: int) -> str:
    return f"{count} byte" if count == 1 else f"{count} bytes"


class Rule:
    """One rule of the catalogue. Hooks run before the engine applies the event (state at call time)."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[str]
    summary: ClassVar[str]
    fix: ClassVar[str]
    syscalls: ClassVar[frozenset[str]] = frozenset()
    # Those of `syscalls` on which on_event cannot act until something of the rule's is in
    # progress (a mark, a window, a failed sync): the engine leaves the hook out on them
    # until the rule is woken (Engine.wake: by its code, or by one of woken_by), and keeps
    # it from then on. Most runs never wake most rules, and a hook called for nothing was
    # a third of the engine's calls per file written, synced and renamed.
    idle_syscalls: ClassVar[frozenset[str]] = frozenset()
    woken_by: ClassVar[frozenset[str]] = frozenset()

    def on_event(self, engine: Engine, event: dict) -> None:
        """Called for each event whose syscall is in `syscalls`."""

    def on_finish(self, engine: Engine) -> None:
        """Called once at the end of observation, after the tree's exit is known."""

    # What a rule remembers about a file lives in the file's state, under the rule's code,
    # so that the engine keeps it (and does not settle the file) without knowing the rule:
    # FileState.marks, a flat (code, value, code, value...) tuple. A file rarely has more
    # than one mark, and a dict for one is 184 bytes, such a tuple 56; a value that names
    # its rule (a class attribute `rule`: FS101's Window) is held alone while it is the only one.

    def recall(self, state: FileState | SettledFile):
        marks = state.marks
        if marks is None:
            return None
        code = self.code
        if marks.__class__ is not tuple:
            return marks if marks.rule == code else None
        for place in range(0, len(marks), 2):
            if marks[place] == code:
                return marks[place + 1]
        return None

    def remember(self, state: FileState, value) -> None:
        marks, code = state.marks, self.code
        if marks is None or (marks.__class__ is not tuple and marks.rule == code):
            state.marks = value if getattr(value, "rule", None) == code else (code, value)
            return
        if marks.__class__ is not tuple:
            marks = (marks.rule, marks)
        for place in range(0, len(marks), 2):
            if marks[place] == code:
                state.marks = (*marks[:place + 1], value, *marks[place + 2:])
                return
        state.marks = (*marks, code, value)

    def forget(self, state: FileState) -> None:
        marks, code = state.marks, self.code
        if marks is None:
            return
        if marks.__class__ is not tuple:
            if marks.rule == code:
                state.marks = None
            return
        for place in range(0, len(marks), 2):
            if marks[place] == code:
                state.marks = (*marks[:place], *marks[place + 2:]) or None
                return
