"""What the log header says about where the traced tree's files live, for their roles
(docs/events.md, header): the mount table of its mount namespace, and its
XDG_CACHE_HOME. Read once, when tracing starts: a mount made later is not seen."""

from __future__ import annotations

import os
import re

_ESCAPE = re.compile(rb"\\([0-7]{3})")   # mountinfo writes space, tab, newline and \ as octal


def mount_table(pid: int | str = "self") -> list[list[str]] | None:
    """[mount point, fstype] of each mount pid sees, in /proc/PID/mountinfo order (a later
    mount on a point hides an earlier one); None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/mountinfo", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    mounts = []
    for line in lines:
        fields = line.split(b" ")
        try:
            # ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTIONS
            fstype = fields[fields.index(b"-", 6) + 1]
        except (ValueError, IndexError):
            continue
        point = _ESCAPE.sub(lambda m: bytes([int(m[1], 8)]), fields[4])
        mounts.append([os.fsdecode(point), os.fsdecode(fstype)])
    return mounts


def cache_home(pid: int | str = "self") -> str | None:
    """pid's XDG_CACHE_HOME when set to an absolute path (the spec ignores relative ones)."""
    if pid == "self":
        value = os.environ.get("XDG_CACHE_HOME", "")
    else:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                entries = f.read().split(b"\0")
        except OSError:
            return None
        value = next((os.fsdecode(e[15:]) for e in entries if e.startswith(b"XDG_CACHE_HOME=")), "")
    return value if value.startswith("/") else None


def role_facts(pid: int | str = "self") -> dict:
    """The header fields roles are decided from: `mounts`, and `cache_home` when set."""
    facts: dict = {}
    mounts = mount_table(pid)
    if mounts is not None:
        facts["mounts"] = mounts
    home = cache_home(pid)
    if home is not None:
        facts["cache_home"] = home
    return facts
