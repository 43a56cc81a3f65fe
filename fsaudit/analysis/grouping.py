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
from dataclasses import dataclass

from .findings import Finding
from .rules import RULES_BY_CODE

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


def _names(path: str, cwd: str | None) -> tuple[list[str], int]:
    """The names of the path's parent directory, and how many of them lead cwd's too."""
    names = os.path.dirname(path).split("/")
    kept = 0
    for name, cwd_name in zip(names, cwd.rstrip("/").split("/") if cwd else []):
        if name != cwd_name:
            break
        kept += 1
    return names, kept


def path_pattern(path: str, cwd: str | None = None) -> str:
    """The path's parent directory with every name generalised, but for the leading
    names it shares with cwd (cwd itself and the directories above it)."""
    names, kept = _names(path, cwd)
    return "/".join(names[:kept] + [generalised(name) for name in names[kept:]]) or "/"


def path_patterns(paths, cwd: str | None = None) -> dict[str, str]:
    """Each path's path_pattern, but that among these paths a name of hex letters only is
    `*` too where a sibling name of its length is one run of hex or digits: git's
    objects/cc beside objects/c2 is a hash that happens to hold no digit."""
    named = {path: _names(path, cwd) for path in paths}
    patterns = {path: [*names[:kept], *(generalised(name) for name in names[kept:])]
                for path, (names, kept) in named.items()}
    runs = {(tuple(patterns[path][:depth]), len(names[depth]))
            for path, (names, kept) in named.items() for depth in range(kept, len(names))
            if patterns[path][depth] == "*"}
    for path, (names, kept) in named.items():
        pattern = patterns[path]
        for depth in range(kept, len(names)):
            if _HEX_LETTERS.fullmatch(names[depth]) and (tuple(pattern[:depth]), len(names[depth])) in runs:
                pattern[depth] = "*"
    return {path: "/".join(pattern) or "/" for path, pattern in patterns.items()}


def stable_pattern(pattern: str) -> str:
    """A pattern with every name generalised, the cwd's too: what stays the same
    wherever and whenever fsaudit runs (SARIF's fingerprints)."""
    return "/".join(generalised(name) for name in pattern.split("/"))


@dataclass
class Group:
    id: str
    rule: str
    name: str
    severity: str
    findings: list[Finding]
    call_site: str | None       # the program's own frame the findings share, or None:
    pattern: str | None         # ... then the path pattern they share (None for findings without a path)
    exe: str | None             # the program image, when every finding names the same one
    paths: list[str]            # every file, in order of first finding
    message: str

    @property
    def fix(self) -> str:
        return self.findings[0].fix

    @property
    def notes(self) -> list[str]:
        return list(dict.fromkeys(note for finding in self.findings for note in finding.notes))


def _causes(findings: list[Finding], cwd: str | None) -> dict[tuple, list[Finding]]:
    """The findings by cause: (rule, severity, call site), or without one (rule, severity,
    None, image, path pattern among that image's findings of the rule)."""
    by_cause: dict[tuple, list[Finding]] = {}
    by_image: dict[tuple, list[Finding]] = {}
    for finding in findings:
        site = own_frame(finding.stack)
        if site is not None:
            by_cause.setdefault((finding.rule, finding.severity, site), []).append(finding)
        else:
            by_image.setdefault((finding.rule, finding.severity, None, finding.exe), []).append(finding)
    for image, members in by_image.items():
        patterns = path_patterns({finding.path for finding in members if finding.path}, cwd)
        for finding in members:
            by_cause.setdefault((*image, patterns.get(finding.path)), []).append(finding)
    return by_cause


def _message(rule: str, findings: list[Finding], paths: list[str], call_site: str | None,
             pattern: str | None, exe: str | None, full_exe: bool) -> str:
    """One finding's own message; for several, what they share, never one file's name
    for all of them (full_exe: the image by its path, as another group of the rule has
    an image of the same name)."""
    if len(findings) == 1:
        return findings[0].message
    if len(paths) == 1:
        subject = paths[0]
    elif paths:
        subject = f"{len(paths)} files"
    else:
        subject = f"{len({finding.pid for finding in findings})} processes"
    where = f" at {call_site}" if call_site else (f" in {pattern}" if len(paths) > 1 else "")
    by = f" by {exe if full_exe else os.path.basename(exe)}" if exe else ""
    times = f" ({len(findings)} findings)" if paths and len(findings) != len(paths) else ""
    return f"{RULES_BY_CODE[rule].summary}: {subject}{where}{by}{times}"


def group_findings(findings: list[Finding], cwd: str | None = None) -> list[Group]:
    """The findings' groups, most severe first, then by rule and first path; ids g1, g2, ...
    cwd: the directory fsaudit runs in (path patterns keep its names)."""
    ordered = sorted(_causes(findings, cwd).items(), key=lambda item: (
        SEVERITY_RANK[item[0][1]], item[0][0], min((f.path or "" for f in item[1])), min(f.pid for f in item[1])))
    # Images of one name that are different files (/usr/bin/python3 and a venv's bin/python3),
    # by rule: their groups name them by path.
    images: dict[tuple, set] = {}
    for cause, members in ordered:
        for finding in members:
            images.setdefault((cause[0], os.path.basename(finding.exe or "")), set()).add(finding.exe)
    groups = []
    for number, (cause, members) in enumerate(ordered, 1):
        members = sorted(members, key=lambda f: (f.path or "", f.pid))
        rule, severity, call_site = cause[:3]
        paths = list(dict.fromkeys(f.path for f in members if f.path))
        made_by = {f.exe for f in members}
        exe = made_by.pop() if len(made_by) == 1 else None
        pattern = None if call_site else cause[4]
        groups.append(Group(id=f"g{number}", rule=rule, name=members[0].name, severity=severity,
                            findings=members, call_site=call_site, pattern=pattern, exe=exe, paths=paths,
                            message=_message(rule, members, paths, call_site, pattern, exe,
                                             exe is not None and len(images[rule, os.path.basename(exe)]) > 1)))
    return groups
