"""The text summary, for a person: findings grouped by severity, each with its fix."""

from __future__ import annotations

from .printable import printable
from .report import SEVERITY_ORDER, code_frame


def render_text(report: dict, fail_on: str) -> str:
    """The summary. Every string a traced program or a log could choose (paths,
    messages naming them, process names, frames) goes through printable()."""
    lines = []
    if not report["complete"]:
        reasons = report.get("incomplete") or [f"{report['counts']['lost_events']} events were lost"]
        lines.append(f"WARNING: this report is incomplete: {printable('; '.join(reasons))}.")
    lines.extend(f"warning: {printable(warning)}" for warning in report.get("warnings", ()))
    config = report["config"]
    if config["path"]:
        lines.append(f"config: {printable(config['path'])}")
        lines.extend(f"  suppressed {printable(s['rule'])} on {printable(s['path'])}: {s['hidden']} "
                     f"finding{'s' * (s['hidden'] != 1)} hidden ({printable(s['reason'])})"
                     for s in config["suppressed"])
    for injection in report["target"].get("injections", []):
        fired = injection["fired"]
        lines.append(f"injection {printable(injection['spec'])}: "
                     + (f"failed {fired} call{'s' * (fired != 1)}" if fired
                        else "never fired (no matching call was made)"))
    if not report["findings"]:
        lines.append("No findings.")
        return "\n".join(lines) + "\n"
    summary = report["summary"]
    lines.append("fsaudit: " + ", ".join(f"{summary[s]} {s}" for s in SEVERITY_ORDER if summary[s]))
    for severity in SEVERITY_ORDER:
        group = [f for f in report["findings"] if f["severity"] == severity]
        if not group:
            continue
        lines.append("")
        lines.append(f"{severity.upper()} ({len(group)})")
        for finding in group:
            times = f" (x{finding['count']})" if finding["count"] > 1 else ""
            lines.append(f"  {finding['rule']} {finding['name']}{times}: {printable(finding['message'])}")
            if finding.get("stack"):
                lines.append(f"    at: {printable(code_frame(finding['stack']) or finding['stack'][0])}")
            lines.append(f"    fix: {printable(finding['fix'])}")
            lines.extend(f"    note: {printable(note)}" for note in finding.get("notes", ()))
    return "\n".join(lines) + "\n"
