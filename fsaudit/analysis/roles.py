"""File roles (rules.md, "The model": role, scope): what a file is for, from where it
lives, its name and what the tree does with it; the configuration's `roles` decide first.

Only *data* files are reported above info, count for FS106 and lend intent to their
directory. volatile, stdio and cache files are out of scope unless --include brings
them back, and the report counts what each of those defaults left out.

Two kinds of role. A *fixed* role follows from the path and facts known when the path
is first seen (config, an inherited stdio target, the mount it is on, a cache
directory): the engine keeps it in FileState.fixed_role and scope depends on it. The
others follow from the name and the tree's conduct (FileState.conduct) and are read
when asked (role_of). A file the tree made durable itself (its own fsync, O_SYNC) is
data whatever its pattern of writes or log-like name, for its own barrier says it
matters (LevelDB's write-ahead log is named NNNNNN.log; SQLite's rollback journal,
created, synced and deleted, is the commit itself), but a lock or pid file stays one
(PostgreSQL fsyncs postmaster.pid), and so does a temporary name the tree linked
elsewhere before removing it (git's tmp_obj_*: the object lives on under its name).
"""

from __future__ import annotations

import os.path
import re
from collections import Counter

ROLES = ("data", "log", "cache", "lock", "temp", "volatile", "stdio")
DEFAULT_EXCLUDED = frozenset({"volatile", "stdio", "cache"})   # --include brings them back
VOLATILE_FSTYPES = frozenset({"tmpfs", "ramfs", "devtmpfs"})   # gone at reboot
STDIO_FDS = frozenset({0, 1, 2})

# FileState.conduct: what the tree did with the file, bit by bit.
BORN = 1                # an open of the tree created it (a directory: its mkdir)
OPENED_FOR_WRITING = 2  # O_WRONLY or O_RDWR
APPENDED = 4            # a write through an O_APPEND fd (or pwritev2 RWF_APPEND), failed or not
REWRITTEN = 8           # any other change of content: a write elsewhere, a truncation, fallocate,
                        # a copy into it, a writable shared mapping
LEFT_OUT = 16           # counted once in Roles.left_out (its role put it out of scope)
LINKED = 32             # the tree gave it another name (link): removing this one keeps the data
PRESENT = 64            # an open of the tree found or made it at this path (so a later O_CREAT creates nothing)
EMPTY = 128             # the tree saw it empty: it created it or truncated it to 0, and wrote nothing since

# Directories whose content is regenerable by design (`/.cache/` covers ~/.cache and
# node_modules/.cache), and npm's content-addressed cache; each name has "cache" in it,
# which one scan of the path rules out for most paths.
CACHE_DIRECTORIES = ("/__pycache__/", "/.pytest_cache/", "/.mypy_cache/", "/.ruff_cache/", "/.cache/",
                     "/_cacache/")
# Caches of widely used programs that live beside their data, named so: PostgreSQL's
# relation cache init file, "used to speed up backend startup" (RELCACHE_INIT_FILENAME
# in src/include/utils/relcache.h), written to pg_internal.init.PID and renamed without
# fsync by write_relcache_init_file() (src/backend/utils/cache/relcache.c): a missing or
# invalid one is rebuilt; and its statistics, pg_stat/ and pg_stat_tmp/, of which "when
# recovery is performed at server start (e.g., after immediate shutdown, server crash
# ...), all statistics counters are reset"
# (https://www.postgresql.org/docs/15/monitoring-stats.html).
PROGRAM_CACHE_NAME = re.compile(r"pg_internal\.init(?:\.[0-9]+)?")
PROGRAM_CACHE_DIRECTORIES = ("/pg_stat/", "/pg_stat_tmp/")
LOG_NAME = re.compile(r".*\.log(?:\.[0-9]+)?|LOG|LOG\.old.*", re.DOTALL)
LOCK_SUFFIXES = (".lock", ".pid", ".swp", ".swx")    # and the name LOCK


def role_by_name(path: str) -> str | None:
    name = path.rpartition("/")[2]
    # A substring test rules LOG_NAME out for most names first: its fullmatch was most of
    # the time of this function, which runs twice per file written, synced and renamed.
    if (".log" in name or name.startswith("LOG")) and LOG_NAME.fullmatch(name):
        return "log"
    if name.endswith(LOCK_SUFFIXES) or name == "LOCK":
        return "lock"
    return None


def role_of(state) -> str:
    """The role of a FileState (or SettledFile) now; directories are data."""
    role = state.fixed_role
    if role is not None:
        return role
    if state.is_dir:
        return "data"
    named = role_by_name(state.path)
    if named == "lock":
        return named
    conduct = state.conduct
    if conduct & BORN and state.unlinked and (not state.intent or conduct & LINKED):
        return "temp"
    if state.intent:
        return "data"
    if named is not None:
        return named
    if not conduct & (APPENDED | REWRITTEN):
        return "lock" if conduct & OPENED_FOR_WRITING else "data"
    return "log" if not conduct & REWRITTEN else "data"


DIRECTORIES_KEPT = 4096     # Mounts' answers per directory, at most


class Mounts:
    """Which paths are on a volatile filesystem, from a mount table of (mount point,
    fstype) pairs in /proc/PID/mountinfo order (a later mount on a point hides an
    earlier one)."""

    def __init__(self, mounts) -> None:
        self._fstype = {point: fstype for point, fstype in mounts}
        volatile = [point for point, fstype in self._fstype.items() if fstype in VOLATILE_FSTYPES]
        # Most paths are under no volatile mount point: one startswith() says so.
        self._volatile_prefixes = tuple(point.rstrip("/") + "/" for point in volatile)
        self._volatile_points = frozenset(volatile)
        # Directory -> whether it is on a volatile mount: the files of one directory
        # share the answer (a metadata storm asks it per file). Emptied when full.
        self._directories: dict[str, bool] = {}

    def volatile(self, path: str) -> bool:
        if not path.startswith(self._volatile_prefixes) and path not in self._volatile_points:
            return False
        fstype = self._fstype.get(path)
        if fstype is not None:      # a mount point itself
            return fstype in VOLATILE_FSTYPES
        parent = os.path.dirname(path)
        answer = self._directories.get(parent)
        if answer is None:
            if len(self._directories) >= DIRECTORIES_KEPT:
                self._directories.clear()
            answer = self._directories[parent] = self._on_volatile_mount(parent)
        return answer

    def _on_volatile_mount(self, directory: str) -> bool:
        while True:   # the mount the directory is on: its longest mount point
            fstype = self._fstype.get(directory)
            if fstype is not None:
                return fstype in VOLATILE_FSTYPES
            if directory == "/":
                return False
            directory = os.path.dirname(directory)


class Roles:
    """The fixed roles of one analysis: config globs, the inherited stdio targets (added as
    their `inherit` events arrive), the mount table and cache home of the log header."""

    def __init__(self, config, mounts=(), cache_home: str | None = None) -> None:
        self._configured = config.role_for if config.roles else None
        self.excluded = DEFAULT_EXCLUDED - frozenset(config.include_roles)
        self.stdio: set[str] = set()
        self._mounts = Mounts(mounts or ())
        self._cache_home = cache_home.rstrip("/") + "/" if cache_home and cache_home.startswith("/") else None
        self.left_out: Counter = Counter()     # role -> files it took out of scope that the tree changed

    def fixed(self, path: str) -> str | None:
        """The role the path has whatever the tree does with it, else None."""
        if self._configured is not None:
            role = self._configured(path)
            if role is not None:
                return role
        if path in self.stdio:
            return "stdio"
        if self._mounts.volatile(path):
            return "volatile"
        if (path.endswith(".pyc") or ("cache" in path and any(directory in path for directory in CACHE_DIRECTORIES))
                or (self._cache_home is not None and path.startswith(self._cache_home))
                or ("/pg_" in path and (PROGRAM_CACHE_NAME.fullmatch(path.rpartition("/")[2])
                                        or any(directory in path for directory in PROGRAM_CACHE_DIRECTORIES)))):
            return "cache"
        return None

    def of_path(self, path: str) -> str:
        """The role of a file the tree never opened (an unlink of a file from before)."""
        return self.fixed(path) or role_by_name(path) or "data"

    def leave_out(self, state) -> None:
        """Count a file its role keeps out of scope, once, when the tree changes it."""
        if state.fixed_role in self.excluded and not state.conduct & LEFT_OUT:
            state.conduct |= LEFT_OUT
            self.left_out[state.fixed_role] += 1
