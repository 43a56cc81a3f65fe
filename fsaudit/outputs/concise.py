"""--format concise: one line per group of findings, paths under the cwd relative."""

from __future__ import annotations

from .printable import printable
from .text import examples, render_summary, totals


def render_concise(report: dict, fail_on: str) -> str:
    """"RULE severity name: message (examples and N more)" per group, then the totals."""
    def lines(relative) -> list[str]:
        out = []
        for group in report["groups"]:
            line = f"{group['rule']} {group['severity']} {group['name']}: {relative(group['message'])}"
            if group["files"] > 1:
                shown, more = examples(group)
                line += f" ({', '.join(relative(path) for path in shown)}{f' and {more} more' if more else ''})"
            out.append(printable(line))
        return [*out, totals(report)]

    return render_summary(report, lines)
