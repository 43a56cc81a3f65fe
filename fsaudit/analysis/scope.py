"""Which paths the analysis is about: absolute, outside the kernel's pseudo-filesystems,
matching --path and not --exclude (gitignore-style globs: fsaudit.analysis.globs)."""

from __future__ import annotations

from .globs import Glob, Globs

UNSCOPED_PREFIXES = ("/proc/", "/sys/", "/dev/")
UNSCOPED_ROOTS = frozenset({"/proc", "/sys", "/dev"})


class Scope:
    def __init__(self, include, exclude) -> None:
        include, exclude = Globs(include), Globs(exclude)
        self._included = include.match if include else None
        self._excluded = exclude.match if exclude else None
        # A --path that matched nothing is a warning (a typo would read as "No findings");
        # a config file's may be written for other programs too.
        self._unmatched = [g for g in include.globs if g.origin == "--path" and not g.negated]

    def contains(self, path: str | None) -> bool:
        # Not cached: it runs when a path gets its FileState (which keeps the answer) and on
        # namespace calls, and a cache keeps every path ever seen (17 MB for 100 000 files).
        if not path or not path.startswith("/") or path.startswith(UNSCOPED_PREFIXES) or path in UNSCOPED_ROOTS:
            return False
        if self._unmatched:
            self._unmatched = [g for g in self._unmatched if not g.match(path)]
        if self._excluded is not None and self._excluded(path):
            return False
        return self._included is None or self._included(path)

    def unmatched(self) -> list[Glob]:
        """The --path globs (negations aside) that no path tested so far has matched."""
        return list(self._unmatched)
