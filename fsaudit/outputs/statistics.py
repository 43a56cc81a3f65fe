"""--statistics: how many findings per rule and per group, instead of the findings
(as ruff's --statistics); as a JSON document with --format json."""

from __future__ import annotations

import os.path
from collections import Counter

from .printable import printable
from .report import SEVERITY_RANK
from .text import plural, render_summary, totals


def _by_rule(report: dict) -> list[dict]:
    counts = Counter()
    for group in report["groups"]:      # a group is one rule at one severity
        counts[group["rule"], group["name"], group["severity"]] += group["count"]
    return [{"rule": rule, "name": name, "severity": severity, "count": count}
            for (rule, name, severity), count in sorted(counts.items(), key=lambda item: (
                SEVERITY_RANK[item[0][2]], item[0][0]))]


def _by_group(report: dict) -> list[dict]:
    return [{key: group[key] for key in ("id", "rule", "severity", "count", "files", "call_site", "pattern", "exe")}
            for group in report["groups"]]


def statistics_document(report: dict, fail_on: str) -> dict:
    return {"rules": _by_rule(report), "groups": _by_group(report), "summary": report["summary"],
            "complete": report["complete"]}


def _image_names(groups: list[dict]) -> dict[tuple, str]:
    """How each group's image is named: by its file's name, or by its path where another
    group of the rule has a different image of the same name (as the groups' messages)."""
    images: dict[tuple, set] = {}
    for group in groups:
        if group["exe"]:
            images.setdefault((group["rule"], os.path.basename(group["exe"])), set()).add(group["exe"])
    return {(group["rule"], group["exe"]): group["exe"] if len(images[group["rule"], name]) > 1 else name
            for group in groups if group["exe"] for name in [os.path.basename(group["exe"])]}


def _where(group: dict, relative, names: dict[tuple, str]) -> str:
    where = f"at {relative(group['call_site'])}" if group["call_site"] else (
        f"in {relative(group['pattern'])}" if group["pattern"] else "")
    by = f" by {relative(names[group['rule'], group['exe']])}" if group["exe"] and not group["call_site"] else ""
    return f"{where}{by}".strip()


def _table(rows: list[list[str]], numeric: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                             for i, cell in enumerate(row)).rstrip() for row in rows]


def render_statistics(report: dict, fail_on: str) -> str:
    names = _image_names(report["groups"])

    def lines(relative) -> list[str]:
        return ["findings by rule:",
                *_table([[str(r["count"]), r["rule"], r["severity"], r["name"]] for r in _by_rule(report)], {0}),
                "findings by group:",
                *_table([[str(g["count"]), g["id"], g["rule"], plural(g["files"], "file"),
                          printable(_where(g, relative, names))] for g in _by_group(report)], {0}),
                totals(report)]

    return render_summary(report, lines)
