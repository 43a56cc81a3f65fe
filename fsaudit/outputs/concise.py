"""--format concise: one line per group of findings, paths under the cwd relative."""

from __future__ import annotations

from .printable import printable
from .text import examples, preamble, relative_to, totals


def render_concise(report: dict, fail_on: str) -> str:
    """"RULE severity name: message (examples and N more)" per group, then the totals."""
    lines = preamble(report)
    if not report["findings"]:
        lines.append("No findings.")
        return "\n".join(lines) + "\n"
    relative = relative_to(report["cwd"])
    for group in report["groups"]:
        line = f"{group['rule']} {group['severity']} {group['name']}: {relative(group['message'])}"
        if group["files"] > 1:
            shown, more = examples(group)
            line += f" ({', '.join(relative(path) for path in shown)}{f' and {more} more' if more else ''})"
        lines.append(printable(line))
    lines.append(totals(report))
    return "\n".join(lines) + "\n"
