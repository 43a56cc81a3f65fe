"""--format github: GitHub Actions workflow commands, one annotation per group of findings,
at the program's own line of code when a stack names it, else at its first file; paths
relative to the source root (the checkout, where the runner looks files up)."""

from __future__ import annotations

from .printable import printable
from .report import findings_by_group, group_site, source_relative
from .text import files_line, preamble, relative_to, totals
from ..analysis.grouping import FRAME_LOCATION

COMMAND = {"error": "error", "warning": "warning", "info": "notice"}
INCOMPLETE = "WARNING: "      # how the preamble's line about an incomplete report begins


def _data(text: str) -> str:
    """A command's message, escaped as the runner unescapes it (actions/toolkit's escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A property's value (file=, title=): also `:` and `,`, which end it (escapeProperty)."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(name: str, properties: dict[str, str], lines: list[str]) -> str:
    """One workflow command; every string through printable() first, so that a file name's
    own newline neither ends the command nor forges another."""
    listed = ",".join(f"{key}={_property(printable(value))}" for key, value in properties.items())
    return f"::{name}{' ' + listed if listed else ''}::{_data(chr(10).join(printable(line) for line in lines))}"


def _where(group: dict, members: list[dict], root: str | None) -> dict[str, str]:
    """file= and line= of the call site, else file= of the group's first file, else nothing."""
    site = group_site(group, members)
    match = FRAME_LOCATION.match(site) if site else None
    if match:
        return {"file": source_relative(match["file"], root) or match["file"], "line": match["line"]}
    if group["paths"]:
        return {"file": source_relative(group["paths"][0], root) or group["paths"][0]}
    return {}


def render_github(report: dict, fail_on: str) -> str:
    """The summary's preamble (an incomplete report as a warning annotation), one ::error,
    ::warning or ::notice per group, most severe first, then the totals."""
    root = report["source_root"]
    relative = relative_to(root)
    lines = [_command("warning", {"title": "fsaudit"}, [line[len(INCOMPLETE):]]) if line.startswith(INCOMPLETE)
             else line for line in preamble(report, relative)]
    members = findings_by_group(report, limit=1)      # a group's first: where it was made
    for group in report["groups"]:
        text = [relative(group["message"]), files_line(group, relative), f"fix: {group['fix']}"]
        lines.append(_command(COMMAND[group["severity"]],
                              {**_where(group, members[group["id"]], root), "title": f"{group['rule']} {group['name']}"},
                              [line for line in text if line is not None]))
    lines.append(totals(report) if report["findings"] else "No findings.")
    return "\n".join(lines) + "\n"
