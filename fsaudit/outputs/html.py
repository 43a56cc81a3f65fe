"""The HTML report (--html): one self-contained page drawn in the browser from the report
document, its `timeline` section (fsaudit.analysis.timeline) included.

As memray's reporters do, the page is a template shipped in the package (templates/,
read with importlib.resources) with its style and script included verbatim, and the
data embedded as JSON; nothing is fetched (no fonts, no libraries), so the page opens
from a CI artifact without a network.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources

from .printable import printable
from .report import findings_by_group

TEMPLATES = resources.files(__package__) / "templates"
# The page holds what it draws, not all the report lists (the JSON report has it all):
# 100 000 findings would be 80 MB of page, 100 000 files 12 MB. At most this many findings
# of one group; the files drawn on the timeline; every process up to PROCESSES, past that
# those drawn, named by a finding, or the target.
FINDINGS_PER_GROUP = 100
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
        "data": json.dumps(embedded(report, fail_on), separators=(",", ":")).translate(_SCRIPT_UNSAFE),
    }
    return _PLACEHOLDER.sub(lambda match: parts[match.group(1)], _asset("report.html"))


def embedded(report: dict, fail_on: str) -> dict:
    """What the page holds: the report with the findings, files and processes it shows
    (left_out: how many of each it leaves out, findings by group), and the run's --fail-on."""
    timeline = report.get("timeline") or {"files": [], "processes": []}
    kept = {id(finding) for members in findings_by_group(report).values() for finding in members[:FINDINGS_PER_GROUP]}
    findings = [finding for finding in report["findings"] if id(finding) in kept]
    drawn = {lane["path"] for lane in timeline["files"]}
    files = [entry for entry in report["files"] if entry["path"] in drawn]
    processes = report["processes"]
    if len(processes) > PROCESSES:
        shown = {lane["pid"] for lane in timeline["processes"]} | {f["pid"] for f in findings} | {report["target"]["pid"]}
        processes = [entry for entry in processes if entry["pid"] in shown]
    left_out = {"findings": {}, "files": len(report["files"]) - len(files),
                "processes": len(report["processes"]) - len(processes)}
    for finding in report["findings"]:
        if id(finding) not in kept:
            left_out["findings"][finding["group"]] = left_out["findings"].get(finding["group"], 0) + 1
    return {"report": {**report, "findings": findings, "files": files, "processes": processes},
            "left_out": left_out, "fail_on": fail_on}


def _title(report: dict) -> str:
    argv = report["target"].get("argv") or []
    return f"fsaudit {report['mode']}: {' '.join(argv)}" if argv else f"fsaudit {report['mode']}"


def _asset(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")
