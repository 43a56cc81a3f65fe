"""JUnit XML, for CI test views: one testcase per rule and file."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

from .printable import printable
from .report import SEVERITY_RANK
from ..analysis.rules import RULES


# What XML 1.0 cannot carry at all, not even as a character reference.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """text for an XML attribute or element: control characters and undecodable bytes
    (surrogates) escaped by printable(), and nothing left that XML 1.0 forbids."""
    return _NOT_XML.sub(lambda match: f"\\u{ord(match.group()):04x}", printable(text))


def render_junit(report: dict, fail_on: str) -> str:
    """One testcase per rule x file with findings (one passing testcase for a rule without any)."""
    limit = SEVERITY_RANK.get(fail_on, -1)
    by_rule_path: dict[tuple, list] = defaultdict(list)
    for finding in report["findings"]:
        by_rule_path[(finding["rule"], finding["path"] or "(process)")].append(finding)
    suite = ET.Element("testsuite", name="fsaudit")
    tests = failures = 0
    for rule in RULES:
        paths = sorted(path for code, path in by_rule_path if code == rule.code)
        if not paths:
            ET.SubElement(suite, "testcase", classname=f"{rule.code} {rule.name}", name="all files")
            tests += 1
            continue
        for path in paths:
            group = by_rule_path[(rule.code, path)]
            case = ET.SubElement(suite, "testcase", classname=f"{rule.code} {rule.name}", name=_xml_text(path))
            tests += 1
            text = "\n".join(f"{_xml_text(f['message'])}\nfix: {_xml_text(f['fix'])}" for f in group)
            if any(SEVERITY_RANK[f["severity"]] <= limit for f in group):
                failures += 1
                failure = ET.SubElement(case, "failure", type=group[0]["severity"], message=_xml_text(group[0]["message"]))
                failure.text = text
            else:
                ET.SubElement(case, "system-out").text = text
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    root = ET.Element("testsuites", name="fsaudit", tests=str(tests), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
