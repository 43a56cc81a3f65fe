"""Findings grouped by cause (spec: rules.md, "Groups: one cause, one entry").

A group is one rule (at one severity) from one call site: the innermost frame of
the program's own code in the finding's stack, when --stacks captured one. Without
it, one rule from one program image in one path pattern: the finding's parent
directory with its runs of digits and hex (segment numbers, pids, hashes), and the
names mkdtemp and mktemp(1) make, generalised to `*` (and a name of hex letters
where a sibling of its length is a run: git's objects/cc); except the names that are
the directory fsaudit runs in or above it, which stay as they are (the summaries
print a path under it relative). A pure function of the findings and that directory.
"""

from __future__ import annotations

import os.path
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .rules import RULES_BY_CODE

if TYPE_CHECKING:
    from .findings import Finding

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}

# How a stack frame names its source line: "function (file:line)".
FRAME_LOCATION = re.compile(r"^(?P<function>.*) \((?P<file>.+):(?P<line>\d+)\)$")
# Where toolchains and system packages keep their sources (and Rust's std
# records its own): frames there are the runtime's, not the program's.
SYSTEM_SOURCES = ("/usr/", "/lib/", "/rustc/", "<")

# A run of hex: a token of hex digits (between characters that are not letters or digits)
# that holds a decimal digit (a hash, a pid in hex) or is at least 12 long; words of hex letters
# ("cafe", "added") are names. Then any run of decimal digits.
_HEX_TOKEN = re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]*[0-9][0-9a-fA-F]*|[0-9a-fA-F]{12,})(?![0-9A-Za-z])")
_DIGITS = re.compile(r"[0-9]+")
# A name of hex letters only: a word ("cafe", "db"), or a hash without a digit (git's objects/cc).
_HEX_LETTERS = re.compile(r"[a-fA-F]+")
# A temporary directory's random name: Python's tempfile ("tmp" and 8 of [a-z0-9_]), mktemp(1)'s.
_TEMPORARY = re.compile(r"tmp[a-z0-9_]{8}|tmp\.[A-Za-z0-9]{10}")


def own_frame(stack: list | None) -> str | None:
    """The innermost frame that names a file and line outside the system's sources:
    the program's own code that made the call."""
    for frame in stack or ():
        match = FRAME_LOCATION.match(frame)
        if match and not match["file"].startswith(SYSTEM_SOURCES):
            return frame
    return None


def generalised(name: str) -> str:
    """A directory's name with what varies between runs made `*`."""
    return "tmp*" if _TEMPORARY.fullmatch(name) else _DIGITS.sub("*", _HEX_TOKEN.sub("*", name))


def _names(directory: str, cwd: str | None) -> tuple[list[str], int]:
    """The names of a directory, and how many of them lead cwd's too."""
    names = directory.split("/")
    kept = 0
    for name, cwd_name in zip(names, cwd.rstrip("/").split("/") if cwd else []):
        if name != cwd_name:
            break
        kept += 1
    return names, kept


def path_pattern(path: str, cwd: str | None = None) -> str:
    """The path's parent directory with every name generalised, but for the leading
    names it shares with cwd (cwd itself and the directories above it)."""
    names, kept = _names(os.path.dirname(path), cwd)
    return "/".join(names[:kept] + [generalised(name) for name in names[kept:]]) or "/"


def path_patterns(paths, cwd: str | None = None) -> dict[str, str]:
    """Each path's path_pattern, but that among these paths a name of hex letters only is
    `*` too where a sibling name of its length is one run of hex or digits: git's
    objects/cc beside objects/c2 is a hash that happens to hold no digit."""
    paths = list(paths)
    patterns = directory_patterns({os.path.dirname(path) for path in paths}, cwd)
    return {path: patterns[os.path.dirname(path)] for path in paths}


def directory_patterns(directories, cwd: str | None = None) -> dict[str, str]:
    """path_patterns of paths in these directories, by directory (a pattern is its parent
    directory's: the many files of one directory make it once)."""
    named = {directory: _names(directory, cwd) for directory in directories}
    patterns = {directory: [*names[:kept], *(generalised(name) for name in names[kept:])]
                for directory, (names, kept) in named.items()}
    runs = {(tuple(patterns[directory][:depth]), len(names[depth]))
            for directory, (names, kept) in named.items() for depth in range(kept, len(names))
            if patterns[directory][depth] == "*"}
    for directory, (names, kept) in named.items():
        pattern = patterns[directory]
        for depth in range(kept, len(names)):
            if _HEX_LETTERS.fullmatch(names[depth]) and (tuple(pattern[:depth]), len(names[depth])) in runs:
                pattern[depth] = "*"
    return {directory: "/".join(pattern) or "/" for directory, pattern in patterns.items()}


def stable_pattern(pattern: str) -> str:
    """A pattern with every name generalised, the cwd's too: what stays the same
    wherever and whenever fsaudit runs (SARIF's fingerprints)."""
    return "/".join(generalised(name) for name in pattern.split("/"))


def report_order(finding: Finding) -> tuple:
    """How the report lists findings: most severe first, then by rule, path and pid."""
    return SEVERITY_RANK[finding.severity], finding.rule, finding.path or "", finding.pid


@dataclass
class Group:
    id: str
    rule: str
    name: str
    severity: str
    count: int                  # its findings
    call_site: str | None       # the program's own frame the findings share, or None:
    pattern: str | None         # ... then the path pattern they share (None for findings without a path)
    exe: str | None             # the program image, when every finding names the same one
    paths: list[str]            # every file, in order
    message: str
    fix: str                    # its first finding's (by path, then pid)
    notes: list[str]            # every finding's, in that order


class _Members:
    """What a group needs of its findings, which are read one at a time and not kept: how
    many, the first by path and pid, every path, pid, image and note."""

    __slots__ = ("count", "first", "first_key", "min_path", "paths", "pids", "exes", "notes", "order")

    def __init__(self, order: tuple) -> None:
        self.count = 0
        self.first: Finding | None = None
        self.first_key: tuple = ()
        self.min_path: str | None = None        # "" for a finding without one
        self.paths: set[str] = set()
        self.pids: set[int] = set()
        self.exes: set[str | None] = set()
        self.notes: dict[str, tuple] = {}       # note -> where it comes first among the findings
        self.order = order                      # among groups that sort alike: the grouping's order

    def add(self, finding: Finding, position: int) -> None:
        self.count += 1
        key = (finding.path or "", finding.pid, position)
        if self.first is None or key < self.first_key:
            self.first, self.first_key = finding, key
        if self.min_path is None or key[0] < self.min_path:
            self.min_path = key[0]
        if finding.path:
            self.paths.add(finding.path)
        self.pids.add(finding.pid)
        self.exes.add(finding.exe)
        for index, note in enumerate(finding.notes):
            if note not in self.notes or (key, index) < self.notes[note]:
                self.notes[note] = (key, index)


def _message(rule: str, members: _Members, paths: list[str], call_site: str | None,
             pattern: str | None, exe: str | None, full_exe: bool) -> str:
    """One finding's own message; for several, what they share, never one file's name
    for all of them (full_exe: the image by its path, as another group of the rule has
    an image of the same name)."""
    if members.count == 1:
        return members.first.message
    if len(paths) == 1:
        subject = paths[0]
    elif paths:
        subject = f"{len(paths)} files"
    else:
        subject = f"{len(members.pids)} processes"
    where = f" at {call_site}" if call_site else (f" in {pattern}" if len(paths) > 1 else "")
    by = f" by {exe if full_exe else os.path.basename(exe)}" if exe else ""
    times = f" ({members.count} findings)" if paths and members.count != len(paths) else ""
    return f"{RULES_BY_CODE[rule].summary}: {subject}{where}{by}{times}"


def group_findings(findings: Iterable[Finding], cwd: str | None = None) -> tuple[list[Group], array]:
    """The findings' groups by cause, most severe first, then by rule, first path and pid (ids
    g1, g2, ...), and the index of each finding's group, in the findings' order. findings:
    read twice, one at a time, none kept (the path patterns first, then the groups).
    A cause is (rule, severity, call site), or without one (rule, severity, None, image,
    path pattern among that image's findings of the rule). cwd: the directory fsaudit runs
    in (path patterns keep its names)."""
    directories: dict[tuple, set[str]] = {}
    first_of_image: dict[tuple, int] = {}
    for position, finding in enumerate(findings):
        if own_frame(finding.stack) is None:
            image = (finding.rule, finding.severity, None, finding.exe)
            first_of_image.setdefault(image, position)
            if finding.path:
                directories.setdefault(image, set()).add(os.path.dirname(finding.path))
    patterns = {image: directory_patterns(names, cwd) for image, names in directories.items()}
    causes: dict[tuple, _Members] = {}
    membership: list[tuple] = []
    # Images of one name that are different files (/usr/bin/python3 and a venv's bin/python3),
    # by rule: their groups name them by path.
    images: dict[tuple, set] = {}
    for position, finding in enumerate(findings):
        site = own_frame(finding.stack)
        if site is not None:
            cause, order = (finding.rule, finding.severity, site), (0, position)
        else:
            image = (finding.rule, finding.severity, None, finding.exe)
            cause = (*image, patterns[image][os.path.dirname(finding.path)] if finding.path else None)
            order = (1, first_of_image[image], position)
        members = causes.get(cause)
        if members is None:
            members = causes[cause] = _Members(order)
        members.add(finding, position)
        membership.append(cause)
        images.setdefault((finding.rule, os.path.basename(finding.exe or "")), set()).add(finding.exe)
    ordered = sorted(causes.items(), key=lambda item: (
        SEVERITY_RANK[item[0][1]], item[0][0], item[1].min_path, min(item[1].pids), item[1].order))
    groups, index_of = [], {}
    for number, (cause, members) in enumerate(ordered):
        rule, severity, call_site = cause[:3]
        paths = sorted(members.paths)
        exe = next(iter(members.exes)) if len(members.exes) == 1 else None
        pattern = None if call_site else cause[4]
        index_of[cause] = number
        groups.append(Group(id=f"g{number + 1}", rule=rule, name=members.first.name, severity=severity,
                            count=members.count, call_site=call_site, pattern=pattern, exe=exe, paths=paths,
                            message=_message(rule, members, paths, call_site, pattern, exe,
                                             exe is not None and len(images[rule, os.path.basename(exe)]) > 1),
                            fix=members.first.fix, notes=sorted(members.notes, key=members.notes.get)))
    return groups, array("i", (index_of[cause] for cause in membership))
