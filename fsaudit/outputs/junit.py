"""JUnit XML, for CI test views: one testcase per group of findings."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from .printable import printable
from .report import SEVERITY_RANK, findings_by_group
from .text import relative_to
from ..analysis.rules import RULES


# What XML 1.0 cannot carry at all, not even as a character reference.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """text for an XML attribute or element: control characters and undecodable bytes
    (surrogates) escaped by printable(), and nothing left that XML 1.0 forbids."""
    return _NOT_XML.sub(lambda match: f"\\u{ord(match.group()):04x}", printable(text))


def _case_name(group: dict) -> str:
    """What a group is about: its one file, else how many files and where (paths under
    the cwd made relative by the caller, the cwd itself ".", as the text summary prints them)."""
    if group["files"] == 1:
        return group["paths"][0]
    subject = f"{group['files']} files" if group["files"] else "(process)"
    if group["call_site"]:
        return f"{subject} at {group['call_site']}"
    return f"{subject} in {group['pattern']}" if group["pattern"] else subject


def render_junit(report: dict, fail_on: str) -> str:
    """One testcase per group (one passing testcase for a rule without any)."""
    limit = SEVERITY_RANK.get(fail_on, -1)
    members = findings_by_group(report)
    relative = relative_to(report["cwd"])
    suite = ET.Element("testsuite", name="fsaudit")
    tests = failures = 0
    for rule in RULES:
        groups = [group for group in report["groups"] if group["rule"] == rule.code]
        if not groups:
            ET.SubElement(suite, "testcase", classname=f"{rule.code} {rule.name}", name="all files")
            tests += 1
            continue
        for group in groups:
            case = ET.SubElement(suite, "testcase", classname=f"{rule.code} {rule.name}",
                                 name=_xml_text(relative(_case_name(group))))
            tests += 1
            findings = members[group["id"]]
            each = [f["message"] for f in findings] if len(findings) > 1 else []   # one: the group's message
            if group["count"] > len(findings):      # findings_by_group holds a bounded number
                each.append(f"and {group['count'] - len(findings)} more (the JSON report lists every finding)")
            text = "\n".join(_xml_text(line) for line in [group["message"], *each, f"fix: {group['fix']}"])
            if SEVERITY_RANK[group["severity"]] <= limit:
                failures += 1
                failure = ET.SubElement(case, "failure", type=group["severity"], message=_xml_text(group["message"]))
                failure.text = text
            else:
                ET.SubElement(case, "system-out").text = text
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    root = ET.Element("testsuites", name="fsaudit", tests=str(tests), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
