"""A rule is written in four places that nothing else holds together: its class
(fsaudit/analysis/rules/*.py), its page (rules/pages/FSxxx.md, what `fsaudit
rules CODE` prints), its per-runtime fix text (analysis/fixes.py) and its row
in docs/rules.md. These tests hold them to one another."""

from __future__ import annotations

import ast
import re

import pytest

from conftest import ROOT
from fsaudit.analysis.fixes import FIXES, KNOWN_BUGS
from fsaudit.analysis.rules import RULES, RULES_BY_CODE

PAGES = ROOT / "fsaudit" / "analysis" / "rules" / "pages"
CATALOGUE = ROOT / "docs" / "rules.md"
RUNTIMES = ROOT / "fsaudit" / "tracing" / "runtimes.py"
# The sections of a page, in this order (the house style for rule pages: every page has them).
SECTIONS = ["What it detects", "Why it loses data", "Example", "Fix", "Trigger events"]
SEVERITIES = {"error", "warning", "info"}


def runtime_names() -> set[str]:
    """The names tracing's classify() can give a process: the first argument of
    each Runtime(...) in runtimes.py. Read from the source, because analysis,
    which FIXES is part of, must not import tracing (tests/test_layout.py)."""
    tree = ast.parse(RUNTIMES.read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Runtime"
            and node.args and isinstance(node.args[0], ast.Constant)}


def headings(page: str) -> list[str]:
    """The page's ## headings, outside code blocks (an example's `# comment` is not one)."""
    found, in_code = [], False
    for line in page.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("## "):
            found.append(line[3:].strip())
    return found


def catalogue_rows() -> list[dict]:
    """The rows of docs/rules.md's tables: | [CODE](link) | name | severity | summary |."""
    row = re.compile(r"^\| \[(?P<code>FS\d+)\]\((?P<link>[^)]+)\) \| (?P<name>[^|]+?) \| (?P<severity>[^|]+?) \|")
    return [match.groupdict() for line in CATALOGUE.read_text().splitlines() if (match := row.match(line))]


def test_rule_codes_names_and_severities_are_well_formed_and_unique():
    assert len(RULES_BY_CODE) == len(RULES)
    assert len({rule.name for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert re.fullmatch(r"FS\d{3}", rule.code) and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), rule.code
        assert rule.severity in SEVERITIES and rule.summary and rule.fix, rule.code


def test_every_rule_has_a_page_and_every_page_a_rule():
    assert sorted(path.stem for path in PAGES.glob("*.md")) == [rule.code for rule in RULES]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_the_page_names_the_rule_and_has_the_sections(rule):
    page = (PAGES / f"{rule.code}.md").read_text()
    assert page.splitlines()[0] == f"# {rule.code} {rule.name} ({rule.severity})"
    assert headings(page) == SECTIONS


def test_the_runtime_names_are_read_from_classify_as_runtimes_py_documents_them():
    documented = re.search(r"^Names: (.*?)\(", ast.get_docstring(ast.parse(RUNTIMES.read_text())), re.M | re.S)
    assert runtime_names() == {name.strip() for name in documented.group(1).replace("\n", " ").split(",")}


def test_fixes_are_for_known_rules_and_known_runtimes():
    runtimes = runtime_names()
    assert set(FIXES) <= set(RULES_BY_CODE), set(FIXES) - set(RULES_BY_CODE)
    for code, by_runtime in FIXES.items():
        assert by_runtime and set(by_runtime) <= runtimes, (code, set(by_runtime) - runtimes)
        assert all(by_runtime.values()), code
    for bug in KNOWN_BUGS:
        assert bug.runtime in runtimes and bug.rules <= set(RULES_BY_CODE), bug


def test_the_catalogue_table_lists_every_rule_with_its_page_name_and_severity():
    rows = catalogue_rows()
    assert [row["code"] for row in rows] == [rule.code for rule in RULES]
    for row in rows:
        rule = RULES_BY_CODE[row["code"]]
        assert (row["name"], row["severity"]) == (rule.name, rule.severity), row
        assert (CATALOGUE.parent / row["link"]).resolve() == PAGES / f"{rule.code}.md", row


def test_headings_in_code_blocks_are_not_sections():
    page = "# FS999 x (error)\n## What it detects\n```\n## not a heading\n```\n## Fix\n"
    assert headings(page) == ["What it detects", "Fix"]
