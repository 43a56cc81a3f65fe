"""SARIF 2.1.0, for code-scanning views: one result per finding, located at the
program's own line of code when the stack names it, and at the file."""

from __future__ import annotations

import os
from urllib.parse import quote

from .printable import printable
from .report import FRAME_LOCATION, code_frame
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


def render_sarif(report: dict, fail_on: str) -> dict:
    """SARIF 2.1.0, valid UTF-8 whatever the names: text through printable(), URIs percent-encoded."""
    rule_index = {rule.code: index for index, rule in enumerate(RULES)}
    results = []
    for finding in report["findings"]:
        result = {"ruleId": finding["rule"], "ruleIndex": rule_index[finding["rule"]],
                  "level": SARIF_LEVEL[finding["severity"]], "message": {"text": printable(finding["message"])},
                  "properties": {"pid": finding["pid"], "count": finding["count"], "fix": printable(finding["fix"]),
                                 "runtime": finding["runtime"] and printable(finding["runtime"]),
                                 "notes": [printable(note) for note in finding.get("notes", [])],
                                 "evidence": [{key: printable(value) if isinstance(value, str) else value
                                               for key, value in event.items()} for event in finding["evidence"]]}}
        locations = []
        source = code_frame(finding.get("stack") or [])
        if source:
            # The line of code first: it is what code-scanning views annotate.
            locations.append(_source_location(source))
        if finding["path"]:
            locations.append({"physicalLocation": {"artifactLocation": {"uri": _uri(finding["path"])}}})
        if locations:
            result["locations"] = locations
        if finding.get("stack"):
            result["stacks"] = [{"message": {"text": "where the call was made"}, "frames": [
                {"location": _source_location(frame) if FRAME_LOCATION.match(frame)
                 else {"message": {"text": printable(frame)}}} for frame in finding["stack"]]}]
        results.append(result)
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
