"""The HTML report (--html): one self-contained page drawn in the browser from the report
document, its `timeline` section (fsaudit.analysis.timeline) included.

As memray's reporters do, the page is a template shipped in the package (templates/,
read with importlib.resources) with its style and script included verbatim, and the
data embedded as JSON (a Listing of the report's, as a list); nothing is fetched (no fonts, no libraries), so the page opens
from a CI artifact without a network.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from importlib import resources

from .printable import printable
from .report import FINDINGS_PER_GROUP

TEMPLATES = resources.files(__package__) / "templates"
# The page holds what it draws, not all the report lists (the JSON report has it all):
# 100 000 findings would be 80 MB of page, 100 000 files 12 MB. At most FINDINGS_PER_GROUP
# findings of one group; the files drawn on the timeline; every process up to PROCESSES,
# past that those drawn, named by a finding, or the target.
PROCESSES = 500
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# JSON inside <script> must not close it or open a comment: <, > and & as \u escapes keep
# the text the same JSON.
_SCRIPT_UNSAFE = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def render_html(report: dict, fail_on: str) -> str:
    parts = {
        "title": html.escape(printable(_title(report))),
        "version": html.escape(report["tool"]["version"]),
        "style": _asset("report.css"),
        "script": _asset("report.js"),
        "data": json.dumps(embedded(report, fail_on), separators=(",", ":"), default=list).translate(_SCRIPT_UNSAFE),
    }
    return _PLACEHOLDER.sub(lambda match: parts[match.group(1)], _asset("report.html"))


def embedded(report: dict, fail_on: str) -> dict:
    """What the page holds: the report with the findings, files and processes it shows
    (left_out: how many of each it leaves out, findings by group), and the run's --fail-on."""
    timeline = report.get("timeline") or {"files": [], "processes": []}
    findings, per_group = [], Counter()
    for finding in report["findings"]:      # one pass, in the report's order
        per_group[finding["group"]] += 1
        if per_group[finding["group"]] <= FINDINGS_PER_GROUP:
            findings.append(finding)
    drawn = {lane["path"] for lane in timeline["files"]}
    files = [entry for entry in report["files"] if entry["path"] in drawn]
    processes = report["processes"]
    if len(processes) > PROCESSES:
        shown = {lane["pid"] for lane in timeline["processes"]} | {f["pid"] for f in findings} | {report["target"]["pid"]}
        processes = [entry for entry in processes if entry["pid"] in shown]
    left_out = {"findings": {group: count - FINDINGS_PER_GROUP for group, count in per_group.items()
                             if count > FINDINGS_PER_GROUP},
                "files": len(report["files"]) - len(files), "processes": len(report["processes"]) - len(processes)}
    return {"report": {**report, "findings": findings, "files": files, "processes": processes},
            "left_out": left_out, "fail_on": fail_on}


def _title(report: dict) -> str:
    argv = report["target"].get("argv") or []
    return f"fsaudit {report['mode']}: {' '.join(argv)}" if argv else f"fsaudit {report['mode']}"


def _asset(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")
