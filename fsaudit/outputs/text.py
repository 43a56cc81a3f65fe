"""The text summary, for a person: the findings' groups by severity, each with its fix once.

Paths under the directory fsaudit ran in are printed relative to it (the report
keeps them absolute), as linters do.
"""

from __future__ import annotations

import itertools
import re

from .printable import printable
from .report import EXAMPLES, SEVERITY_ORDER, findings_by_group, group_site


def relative_to(cwd: str | None):
    """A function that rewrites text with every path under cwd made relative to it: a
    path starts a word of the text, or follows "(" or a quote; cwd itself is "." (FS102's
    "never fsynced the directory ." beside "the directory sub", issue #15). Identity when
    cwd is unknown or "/"."""
    if not cwd or cwd == "/":
        return lambda text: text
    starts = r"(?<![^\s('\"])" + re.escape(cwd)
    under = re.compile(starts + r"/(?=[^\s/])")
    itself = re.compile(starts + r"/?(?=$|[\s)'\",;:])")
    return lambda text: itself.sub(".", under.sub("", text))


def preamble(report: dict, relative=lambda text: text) -> list[str]:
    """What every summary says before the findings: an incomplete report, warnings,
    the configuration applied and what it hid, --inject's outcome (relative: how the
    summary writes paths)."""
    lines = []
    if not report["complete"]:
        reasons = report.get("incomplete") or [f"{report['counts']['lost_events']} events were lost"]
        lines.append(f"WARNING: this report is incomplete: {printable(relative('; '.join(reasons)))}.")
    lines.extend(f"warning: {printable(relative(warning))}" for warning in report.get("warnings", ()))
    config = report["config"]
    if config["path"]:
        lines.append(f"config: {printable(relative(config['path']))}")
        lines.extend(f"  suppressed {printable(s['rule'])} on {printable(s['path'])}: {s['hidden']} "
                     f"finding{'s' * (s['hidden'] != 1)} hidden ({printable(s['reason'])})"
                     for s in config["suppressed"])
    for injection in report["target"].get("injections", []):
        fired = injection["fired"]
        lines.append(f"injection {printable(injection['spec'])}: "
                     + (f"failed {fired} call{'s' * (fired != 1)}" if fired
                        else "never fired (no matching call was made)"))
    return lines


def examples(group: dict) -> tuple[list[str], int]:
    """The paths a summary shows for a group, and how many it leaves out: the group's
    examples, or all of them where "and 1 more" would take the place of the last."""
    shown = group["paths"] if group["files"] <= EXAMPLES + 1 else group["examples"]
    return shown, group["files"] - len(shown)


def files_line(group: dict, relative) -> str | None:
    """"files: a, b, c and 37 more" for a group of several files (relative: how to write each
    path), for the one-message formats (SARIF, GitHub annotations); None for one or none."""
    if group["files"] <= 1:
        return None
    shown, more = examples(group)
    return f"files: {', '.join(relative(path) for path in shown)}{f' and {more} more' if more else ''}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def totals(report: dict) -> str:
    """"fsaudit: 2 error, 1 warning in 2 groups"."""
    summary = report["summary"]
    return ("fsaudit: " + ", ".join(f"{summary[s]} {s}" for s in SEVERITY_ORDER if summary[s])
            + f" in {plural(len(report['groups']), 'group')}")


def render_summary(report: dict, body) -> str:
    """A summary: the preamble, then "No findings." or body(relative)'s lines, relative
    being how to write a path under the cwd (relative_to)."""
    relative = relative_to(report["cwd"])
    lines = preamble(report, relative)
    if report["findings"]:
        lines.extend(body(relative))
    else:
        lines.append("No findings.")
    return "\n".join(lines) + "\n"


def _group_lines(group: dict, members: list[dict], show) -> list[str]:
    """A warning or error group in full: what it is, its files (a few and "and N more"),
    where the call was made; its fix is said once for its rule (_loud_lines)."""
    head = f"  {group['rule']} {group['name']}"
    if group["count"] == 1:
        times = members[0]["count"]
        lines = [f"{head}{f' (x{times})' if times > 1 else ''}: {show(group['message'])}"]
    else:
        files = f", {plural(group['files'], 'file')}" if group["files"] else ""
        lines = [f"{head} [{plural(group['count'], 'finding')}{files}]: {show(group['message'])}"]
        if group["files"] > 1:
            shown, more = examples(group)
            lines.extend(f"    {show(path)}" for path in shown)
            if more:
                lines.append(f"    and {more} more")
    site = group_site(group, members)
    if site:
        lines.append(f"    at: {show(site)}")
    lines.extend(f"    note: {printable(note)}" for note in group["notes"])
    return lines


def _loud_lines(groups: list[dict], findings: dict[str, list[dict]], show) -> list[str]:
    """Warning or error groups in full, the fix once after each run of groups of one rule
    that share it."""
    lines = []
    for index, group in enumerate(groups):
        lines.extend(_group_lines(group, findings[group["id"]], show))
        after = groups[index + 1] if index + 1 < len(groups) else None
        if after is None or (after["rule"], after["fix"]) != (group["rule"], group["fix"]):
            lines.append(f"    fix: {printable(group['fix'])}")
    return lines


def _folded_lines(groups: list[dict], show) -> list[str]:
    """Info groups folded, one line a rule: a rule's one finding as its message, else the
    counts and a few files, taken from each group in turn."""
    lines = []
    by_rule: dict[str, list[dict]] = {}
    for group in groups:
        by_rule.setdefault(group["rule"], []).append(group)
    for rule, members in by_rule.items():
        head = f"  {rule} {members[0]['name']}"
        count = sum(group["count"] for group in members)
        if count == 1:
            lines.append(f"{head}: {show(members[0]['message'])}")
            continue
        paths = list(dict.fromkeys(path for group in members for path in group["paths"]))
        # one example from each group first, then the next of each, ...
        turns = [path for turn in itertools.zip_longest(*(group["paths"] for group in members))
                 for path in turn if path is not None]
        shown = list(dict.fromkeys(turns))[:len(paths) if len(paths) <= EXAMPLES + 1 else EXAMPLES]
        more = len(paths) - len(shown)
        counts = plural(count, "finding") + (f", {plural(len(paths), 'file')}" if paths else "") \
            + (f" in {plural(len(members), 'group')}" if len(members) > 1 else "")
        listed = ", ".join(show(path) for path in shown) + (f" and {more} more" if more else "")
        lines.append(f"{head} [{counts}]: {listed or show(members[0]['message'])}")
    return lines


def render_text(report: dict, fail_on: str) -> str:
    """The summary: the totals, then the error and warning groups in full, then the info
    groups folded to a line a rule (--format concise lists each group, the JSON every
    finding). Every string a traced program or a log could choose (paths, messages naming
    them, process names, frames) goes through printable()."""
    return render_summary(report, lambda relative: _text_lines(report, relative))


def _text_lines(report: dict, relative) -> list[str]:
    def show(text: str) -> str:
        return printable(relative(text))

    lines = [totals(report)]
    findings = findings_by_group(report, limit=1)      # a group's first: its count and where it was made
    for severity in SEVERITY_ORDER:
        groups = [group for group in report["groups"] if group["severity"] == severity]
        if not groups:
            continue
        heading = f"{severity.upper()}: {plural(sum(g['count'] for g in groups), 'finding')} " \
                  f"in {plural(len(groups), 'group')}"
        if severity == "info":
            lines.extend(["", f"{heading}, a line a rule (--format concise lists each group)"])
            lines.extend(_folded_lines(groups, show))
        else:
            lines.extend(["", heading])
            lines.extend(_loud_lines(groups, findings, show))
    return lines
