"""Gitignore-style globs on the absolute paths the engine sees.

A glob is written relative to a base directory (the config file's, or the current
directory for a command-line option) or as an absolute path. It is rewritten as a
pattern from the filesystem root and compiled by pathspec's GitIgnoreSpecPattern,
the flavour that replicates git, so `*`, `?`, `[...]`, `**`, `dir/` and `!` mean
what they mean in a .gitignore. A leading `/` makes a glob absolute rather than
anchoring it to the base (fsaudit sees absolute paths, many outside any project);
`./name` anchors a single name to the base, as a `/` before a glob's end does.
"""

from __future__ import annotations

import os
import re

from pathspec.patterns.gitignore import GitIgnorePatternError
# _DIR_MARK names the regex group of a match through a directory above the path: private
# to pathspec, so tests/test_config.py checks Globs against GitIgnoreSpec itself.
from pathspec.patterns.gitignore.spec import _DIR_MARK, GitIgnoreSpecPattern

_SPECIAL = re.compile(r"([\\*?\[\]])")


class GlobError(ValueError):
    """A glob that cannot be compiled, or matches nothing by construction."""


class Glob(str):
    """A glob as written (the str itself, for messages and the report) that knows the
    directory it is relative to, and where it was written (origin: "--path", a config key)."""

    def __new__(cls, text: str, base: str | None = None, origin: str | None = None) -> "Glob":
        glob = super().__new__(cls, text)
        glob.base = base = base or os.getcwd()
        glob.origin = origin
        glob.negated = text.startswith("!")
        body = text[1:] if glob.negated else text
        if not body.strip():
            raise GlobError("an empty glob matches nothing")
        if not body.startswith("/"):
            root = _SPECIAL.sub(r"\\\1", base.rstrip("/"))
            if body.startswith("./"):
                body = f"{root}/{body[2:]}"
            elif "/" in body.rstrip("/"):       # a / before the end anchors it, as in gitignore
                body = f"{root}/{body}"
            else:                               # a bare name matches at any depth below the base
                body = f"{root}/**/{body}"
        try:
            pattern = GitIgnoreSpecPattern(body)
        except GitIgnorePatternError:
            pattern = None
        if pattern is None or pattern.regex is None:      # pathspec drops an unclosed [, as git does
            raise GlobError("not a glob that can match a path")
        glob.regex = pattern.regex
        # A pattern that can match a directory above the path marks it: a glob that names
        # the path itself outranks it (git brings `!logs/keep.log` back from `logs/`).
        glob.marks_directory = _DIR_MARK in pattern.regex.groupindex
        return glob

    def match(self, path: str) -> bool:
        """Whether the absolute path is named by the glob, or lies below a directory it names
        (the negation aside)."""
        return self.regex.match(path[1:]) is not None


def as_glob(value: str | Glob) -> Glob:
    """value as a Glob; a plain string is relative to the current directory."""
    return value if isinstance(value, Glob) else Glob(value)


class Globs:
    """An ordered list of globs as one test, as a .gitignore is read: the last glob that
    names a path decides, a negated one taking it out; one that names the path itself
    outranks one that names a directory above it (pathspec's GitIgnoreSpec)."""

    def __init__(self, globs) -> None:
        self.globs = [as_glob(g) for g in globs]
        self._newest_first = [(g.regex.match, not g.negated, g.marks_directory) for g in reversed(self.globs)]

    def __bool__(self) -> bool:
        return bool(self.globs)

    def match(self, path: str) -> bool:
        relative = path[1:]
        through_directory = None
        for match, include, marks_directory in self._newest_first:
            found = match(relative)
            if found is not None:
                if not (marks_directory and found.group(_DIR_MARK)):
                    return include
                if through_directory is None:
                    through_directory = include
        return bool(through_directory)
