"""SARIF 2.1.0, for code-scanning views (GitHub's among them): one result per group of
findings, located at the program's own line of code when a stack names it (its files are
then related locations), else at its first file; files under the source root named
relative to %SRCROOT%, so that a checkout anywhere gives the same alerts. A result's
properties list the group's first findings (report.FINDINGS_PER_GROUP; `count` says
how many it has, the JSON report lists every one)."""

from __future__ import annotations

import os
from urllib.parse import quote

from .printable import printable
from .report import findings_by_group, group_site, source_relative
from .text import files_line, relative_to
from ..analysis.grouping import FRAME_LOCATION, stable_pattern
from ..analysis.rules import RULES
from ..analysis.rules.docs import page, section

SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SRCROOT = "%SRCROOT%"
FINGERPRINT = "fsauditCause/v1"


def _raw_bytes(path: str) -> bytes:
    """The bytes a path was made of (a log can also carry surrogates os.fsdecode never makes)."""
    try:
        return os.fsencode(path)
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogatepass")


def _quoted(path: str) -> str:
    """The raw bytes percent-encoded, so that any name, not UTF-8 or with control
    characters, is a valid URI."""
    return quote(_raw_bytes(path), safe="/")


def _artifact(path: str, root: str | None) -> dict:
    """A path under the source root (or relative) as a reference from %SRCROOT%, any
    other as a file URI."""
    relative = source_relative(path, root)
    if relative is None:
        return {"uri": "file://" + _quoted(path)}
    return {"uri": _quoted(relative), "uriBaseId": SRCROOT} if root else {"uri": _quoted(relative)}


def _frame_text(frame: str, root: str | None) -> str:
    """A frame with its file relative to the source root when it is under it."""
    match = FRAME_LOCATION.match(frame)
    if not match:
        return frame
    relative = source_relative(match["file"], root)
    return f"{match['function']} ({relative or match['file']}:{match['line']})"


def _source_location(frame: str, root: str | None) -> dict:
    match = FRAME_LOCATION.match(frame)
    return {"physicalLocation": {"artifactLocation": _artifact(match["file"], root),
                                 "region": {"startLine": int(match["line"])}},
            "message": {"text": printable(_frame_text(frame, root))}}


def _file_location(path: str, root: str | None) -> dict:
    return {"physicalLocation": {"artifactLocation": _artifact(path, root)}}


def _text(value):
    return printable(value) if isinstance(value, str) else value


def _stack(stack: list, root: str | None) -> dict:
    return {"message": {"text": "where the call was made"}, "frames": [
        {"location": _source_location(frame, root) if FRAME_LOCATION.match(frame)
         else {"message": {"text": printable(frame)}}} for frame in stack]}


def _cause(group: dict, root: str | None) -> str:
    """What makes a group the same problem from run to run, wherever the checkout is:
    the rule and its call site, else the rule, the program's name and the path pattern,
    both relative to the source root when under it. No pid, time or file of its own
    (the pattern has made the varying parts of names `*`, temporary names included)."""
    if group["call_site"]:
        return f"{group['rule']}:{_frame_text(group['call_site'], root)}"
    exe = os.path.basename(group["exe"]) if group["exe"] else ""
    return f"{group['rule']}:{exe}:{_pattern(group, root)}"


def _pattern(group: dict, root: str | None) -> str:
    """The group's path pattern with the names it kept as the cwd's generalised too, so that
    the fingerprint does not depend on where fsaudit ran; for files all under the source
    root, its components below the root's ("." for the root itself)."""
    pattern = group["pattern"] or ""
    if pattern and all(source_relative(path, root) is not None for path in group["paths"]):
        pattern = "/".join(pattern.split("/")[len(root.rstrip("/").split("/")):]) or "."
    return stable_pattern(pattern)


def _message(group: dict, root: str | None) -> str:
    """The group's message, then the files it names (the first few, as the text summary
    shows them; relatedLocations has them all) and the fix; paths under the source root
    relative to it."""
    relative = relative_to(root)
    lines = [relative(group["message"]), files_line(group, relative), f"fix: {group['fix']}"]
    return "\n".join(printable(line) for line in lines if line is not None)


def _result(group: dict, members: list[dict], rule_index: dict, root: str | None) -> dict:
    result = {"ruleId": group["rule"], "ruleIndex": rule_index[group["rule"]],
              "level": SARIF_LEVEL[group["severity"]], "message": {"text": _message(group, root)},
              # What code scanning matches alerts by across runs.
              "partialFingerprints": {FINGERPRINT: printable(_cause(group, root))},
              "properties": {"group": group["id"], "count": group["count"], "files": group["files"],
                             "fix": printable(group["fix"]), "notes": [printable(note) for note in group["notes"]],
                             "findings": [{"pid": f["pid"], "path": _text(f["path"]),
                                           "message": printable(f["message"]),
                                           "count": f["count"], "runtime": _text(f["runtime"]),
                                           "evidence": [{key: _text(value) for key, value in event.items()}
                                                        for event in f["evidence"]]} for f in members]}}
    files = [_file_location(path, root) for path in group["paths"]]
    site = group_site(group, members)
    if site and FRAME_LOCATION.match(site):
        # The line of code: what code-scanning views annotate.
        result["locations"] = [_source_location(site, root)]
    elif files:
        result["locations"] = files[:1]    # one location, as code scanning wants; every file is related
    if files:
        result["relatedLocations"] = [{"id": number, **location} for number, location in enumerate(files)]
    stacks = list(dict.fromkeys(tuple(f["stack"]) for f in members if f["stack"]))
    if stacks:
        result["stacks"] = [_stack(list(stack), root) for stack in stacks]
    return result


def _suppressed_result(group: dict, members: list[dict], rule_index: dict, root: str | None) -> dict:
    """A group that a suppression hid: its own fingerprint (the suppression's glob added, as
    the same call site can also have findings that are not suppressed), and the reason."""
    result = _result(group, members, rule_index, root)
    result["partialFingerprints"][FINGERPRINT] += printable(f" suppressed {group['suppression']}")
    result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": printable(group["reason"])}]
    return result


def _rule(rule, help_uri: str) -> dict:
    """A rule, described from its page: what it detects (fullDescription) and the whole page (help)."""
    text = page(rule.code)
    detects = section(text, "What it detects") if text else None
    described = {"text": " ".join(detects.split()), "markdown": detects} if detects else {"text": rule.summary}
    return {"id": rule.code, "name": rule.name, "shortDescription": {"text": rule.summary},
            "fullDescription": described,
            "helpUri": help_uri.format(code=rule.code, name=rule.name),
            "help": {"text": text, "markdown": text} if text else {"text": rule.fix},
            "defaultConfiguration": {"level": SARIF_LEVEL[rule.severity]}}


def _root_uri(root: str) -> str:
    return "file://" + _quoted(root.rstrip("/") + "/")


def render_sarif(report: dict, fail_on: str) -> dict:
    """SARIF 2.1.0, valid UTF-8 whatever the names: text through printable(), URIs percent-encoded."""
    rule_index = {rule.code: index for index, rule in enumerate(RULES)}
    root = report["source_root"]
    members = findings_by_group(report)
    results = [_result(group, members[group["id"]], rule_index, root) for group in report["groups"]]
    hidden = findings_by_group(report, "suppressed_findings")
    results += [_suppressed_result(group, hidden[group["id"]], rule_index, root)
                for group in report["suppressed_groups"]]
    run = {
        "tool": {"driver": {
            "name": "fsaudit", "version": report["tool"]["version"],
            "rules": [_rule(rule, report["help_uri"]) for rule in RULES],
        }},
        "results": results,
    }
    if root:
        run["originalUriBaseIds"] = {SRCROOT: {"uri": _root_uri(root)}}
    return {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [run]}
