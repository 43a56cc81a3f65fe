"""Which paths the analysis is about: absolute, outside the kernel's pseudo-filesystems,
matching --path/--include and not --exclude."""

from __future__ import annotations

from fnmatch import fnmatchcase

UNSCOPED_PREFIXES = ("/proc/", "/sys/", "/dev/")
UNSCOPED_ROOTS = frozenset({"/proc", "/sys", "/dev"})


class Scope:
    def __init__(self, include, exclude) -> None:
        self._include = list(include)
        self._exclude = list(exclude)

    def contains(self, path: str | None) -> bool:
        # Not cached: it runs when a path gets its FileState (which keeps the answer) and on
        # namespace calls, and a cache keeps every path ever seen (17 MB for 100 000 files).
        if not path or not path.startswith("/") or path.startswith(UNSCOPED_PREFIXES) or path in UNSCOPED_ROOTS:
            return False
        if any(fnmatchcase(path, glob) for glob in self._exclude):
            return False
        return not self._include or any(fnmatchcase(path, glob) for glob in self._include)
