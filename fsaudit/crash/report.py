"""The crash report: JSON (schema fsaudit.crash/1) and text, from an Outcome."""

from __future__ import annotations

from dataclasses import asdict

from ..api import printable
from .explore import Outcome, describe, rerun_command

SCHEMA = "fsaudit.crash/1"
PREDICTING = ("FS101", "FS102", "FS103", "FS104", "FS105", "FS106", "FS107")


def _rule(findings: list, cause: list[dict]) -> str | None:
    """The live rule that fired on the calls of the minimal cause: a finding whose
    evidence is one of those calls, else one about the same file."""
    times = {c["t"] for c in cause}
    paths = {c.get("path") for c in cause} | {c.get("path2") for c in cause}
    for finding in findings:
        if finding.rule in PREDICTING and any(e.get("t") in times for e in finding.evidence):
            return finding.rule
    for finding in findings:
        if finding.rule in PREDICTING and (finding.path in paths or finding.target_path in paths):
            return finding.rule
    return None


def document(outcome: Outcome) -> dict:
    ops = outcome.recording.ops
    failures = []
    for failure in outcome.failures:
        cand = failure.candidate
        op = ops[cand.point]
        cause = [describe(outcome, u) for u in failure.cause]
        acked = b"".join(o.data for o in ops[:cand.point + 1] if o.kind == "ack")
        failures.append({
            "count": failure.count, "model": cand.model, "strategy": cand.strategy,
            "crash_point": {"index": op.index, **op.describe()},
            "lost": [describe(outcome, u) for u in sorted(cand.lost)],
            "minimal_cause": cause, "rule": _rule(outcome.findings, cause),
            "acked": acked.decode(errors="replace"), "checker_exit": failure.verdict.exit,
            "checker_output": failure.verdict.output, "state_dir": failure.state_dir,
            "rerun": rerun_command(outcome, failure)})
    return {"schema": SCHEMA, "model": outcome.models, "scopes": outcome.recording.scopes,
            "calls": len(ops),
            "states": {"generated": outcome.generated, "distinct": outcome.distinct,
                       "checked": outcome.checked, "failed": outcome.failed},
            "budget_exhausted": outcome.budget_exhausted, "seconds": round(outcome.seconds, 3),
            "first_failure_seconds": None if outcome.first_failure_s is None else round(outcome.first_failure_s, 3),
            "failures": failures, "findings": [asdict(f) for f in outcome.findings]}


def page_section(doc: dict) -> dict:
    """What the HTML report draws of a crash run (its `crash` section): the document
    without the findings, which the page has from the trace's own report."""
    return {key: value for key, value in doc.items() if key != "findings"}


def _call(entry: dict) -> str:
    text = f"{entry.get('lost') or entry.get('syscall')} {printable(entry.get('path') or '')}"
    if entry.get("path2"):
        text += f" -> {printable(entry['path2'])}"
    if "range" in entry:
        text += f" bytes {entry['range'][0]}-{entry['range'][1]}"
    if "size" in entry:
        text += f" size {entry['size']}"
    return f"{text} at {entry['t']:.6f}s"


def text(doc: dict) -> str:
    s = doc["states"]
    lines = [f"fsaudit crash: {s['failed']} of {s['checked']} states checked failed "
             f"({s['distinct']} distinct of {s['generated']} generated, {doc['calls']} calls recorded, "
             f"model {', '.join(doc['model'])}, {doc['seconds']:.1f} s)"
             + ("; the budget ran out before the list did" if doc["budget_exhausted"] else "")]
    for n, f in enumerate(doc["failures"], 1):
        point = f["crash_point"]
        lines.append("")
        lines.append(f"FAILURE {n} ({f['count']} state{'s' if f['count'] > 1 else ''}, {f['model']}): "
                     f"power cut after {_call({'lost': point['syscall'], **point})}")
        if f["acked"]:
            lines.append(f"  acknowledged by then: {printable(f['acked'].strip()[-200:])}")
        lines.append(f"  checker exit {f['checker_exit']}: {printable(f['checker_output'].strip()[-300:])}")
        lines.append("  minimal cause: lost " + "; ".join(_call(c) for c in f["minimal_cause"]))
        if f["rule"]:
            lines.append(f"  predicted live by {f['rule']} (`fsaudit rules {f['rule']}`)")
        lines.append(f"  state kept in {printable(f['state_dir'])}")
        lines.append(f"  rerun: {f['rerun']}")
    return "\n".join(lines) + "\n"
