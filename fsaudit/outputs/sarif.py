"""SARIF 2.1.0, for code-scanning views: one result per group of findings, located at
the program's own line of code when a stack names it (the files are then related
locations), else at its files."""

from __future__ import annotations

import os
from urllib.parse import quote

from .printable import printable
from .report import findings_by_group, group_site
from ..analysis.grouping import FRAME_LOCATION
from ..analysis.rules import RULES

SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _raw_bytes(path: str) -> bytes:
    """The bytes a path was made of (a log can also carry surrogates os.fsdecode never makes)."""
    try:
        return os.fsencode(path)
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogatepass")


def _uri(path: str) -> str:
    """A file URI (absolute paths) or a relative reference: the raw bytes percent-encoded,
    so that any name, not UTF-8 or with control characters, is a valid URI."""
    quoted = quote(_raw_bytes(path), safe="/")
    return "file://" + quoted if path.startswith("/") else quoted


def _source_location(frame: str) -> dict:
    match = FRAME_LOCATION.match(frame)
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(match["file"])},
                                 "region": {"startLine": int(match["line"])}},
            "message": {"text": printable(frame)}}


def _file_location(path: str) -> dict:
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(path)}}}


def _text(value):
    return printable(value) if isinstance(value, str) else value


def _stack(stack: list) -> dict:
    return {"message": {"text": "where the call was made"}, "frames": [
        {"location": _source_location(frame) if FRAME_LOCATION.match(frame)
         else {"message": {"text": printable(frame)}}} for frame in stack]}


def _result(group: dict, members: list[dict], rule_index: dict) -> dict:
    result = {"ruleId": group["rule"], "ruleIndex": rule_index[group["rule"]],
              "level": SARIF_LEVEL[group["severity"]], "message": {"text": printable(group["message"])},
              # The cause, stable from run to run: what code-scanning matches alerts by.
              "partialFingerprints": {"fsauditCause/v1": printable(
                  f"{group['rule']}:{group['call_site'] or group['pattern'] or group['exe'] or ''}")},
              "properties": {"group": group["id"], "count": group["count"], "files": group["files"],
                             "fix": printable(group["fix"]), "notes": [printable(note) for note in group["notes"]],
                             "findings": [{"pid": f["pid"], "path": _text(f["path"]),
                                           "message": printable(f["message"]),
                                           "count": f["count"], "runtime": _text(f["runtime"]),
                                           "evidence": [{key: _text(value) for key, value in event.items()}
                                                        for event in f["evidence"]]} for f in members]}}
    files = [_file_location(path) for path in group["paths"]]
    site = group_site(group, members)
    if site and FRAME_LOCATION.match(site):
        # The line of code: what code-scanning views annotate; the files it wrote are related.
        result["locations"] = [_source_location(site)]
        if files:
            result["relatedLocations"] = [{"id": number, **location} for number, location in enumerate(files)]
    elif files:
        result["locations"] = files
    stacks = list(dict.fromkeys(tuple(f["stack"]) for f in members if f["stack"]))
    if stacks:
        result["stacks"] = [_stack(list(stack)) for stack in stacks]
    return result


def render_sarif(report: dict, fail_on: str) -> dict:
    """SARIF 2.1.0, valid UTF-8 whatever the names: text through printable(), URIs percent-encoded."""
    rule_index = {rule.code: index for index, rule in enumerate(RULES)}
    members = findings_by_group(report)
    results = [_result(group, members[group["id"]], rule_index) for group in report["groups"]]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "fsaudit", "version": report["tool"]["version"],
                "rules": [{"id": rule.code, "name": rule.name, "shortDescription": {"text": rule.summary},
                           "help": {"text": rule.fix},
                           "defaultConfiguration": {"level": SARIF_LEVEL[rule.severity]}} for rule in RULES],
            }},
            "results": results,
        }],
    }
