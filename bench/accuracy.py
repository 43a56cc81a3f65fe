"""How many of fsaudit's findings on real programs are worth acting on (issue #15's table).

Runs every case of the real-program suite (tests/real/test_*.py: each case's
command under `fsaudit run`) and classifies each finding with that case's
ground truth (the same `truths` the tests assert): true, noise, false, or
unclassified when the ground truth does not cover it. Prints one markdown
table. Run as root after `make setup`:

    .venv/bin/python bench/accuracy.py [--case NAME]... [--keep] [--details]
    .venv/bin/python bench/accuracy.py --from DIR...   # work directories a --keep run left

Columns: findings and groups (when the report has `groups`); true / noise /
false / unclassified findings; missed: TRUE ground-truth lines no finding
matches; misnamed: messages that do not name the image that made the call;
warn+ true: the share of warning and error groups (findings, without groups)
that are true, a group being true when any of its findings is, false when
any is false and none is true; summary: lines of the text summary.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))     # tests/real is the package `real`

from real.realcase import FALSE, NOISE, SEVERITY_RANK, TRUE, Case, Traced, misnamed, missing, new_workdir, run_case  # noqa: E402


def all_cases() -> list[Case]:
    cases = []
    for module in sorted((ROOT / "tests" / "real").glob("test_*.py")):
        cases.extend(getattr(importlib.import_module(f"real.{module.stem}"), "CASES", []))
    return cases


def group_verdicts(traced: Traced) -> dict[str, str]:
    members: dict[str, list[str | None]] = {}
    for finding in traced.findings:
        if finding.get("group"):
            members.setdefault(finding["group"], []).append(traced.verdict(finding))
    out = {}
    for group, verdicts in members.items():
        out[group] = TRUE if TRUE in verdicts else FALSE if FALSE in verdicts else NOISE if NOISE in verdicts else None
    return out


def row(traced: Traced) -> dict:
    findings = traced.findings
    verdicts = [traced.verdict(f) for f in findings]
    loud = [f for f in findings if SEVERITY_RANK[f["severity"]] >= SEVERITY_RANK["warning"]]
    if "groups" in traced.report:
        by_group = group_verdicts(traced)
        loud_groups = [g for g in traced.report["groups"] if SEVERITY_RANK[g["severity"]] >= SEVERITY_RANK["warning"]]
        loud_true = sum(by_group.get(g["id"]) == TRUE for g in loud_groups)
        loud_total, groups = len(loud_groups), len(traced.report["groups"])
    else:
        loud_true, loud_total, groups = sum(traced.verdict(f) == TRUE for f in loud), len(loud), None
    missed = [t for t in traced.case.truths if t.verdict == TRUE
              and not any(traced.matches(t, f) for f in findings)]
    return {"case": traced.case.name, "program": traced.case.program, "findings": len(findings), "groups": groups,
            TRUE: verdicts.count(TRUE), NOISE: verdicts.count(NOISE), FALSE: verdicts.count(FALSE),
            "unclassified": verdicts.count(None), "missed": missed, "misnamed": len(misnamed(traced)),
            "loud_true": loud_true, "loud_total": loud_total, "summary": traced.summary.count("\n"),
            "seconds": traced.seconds}


def share(true: int, total: int) -> str:
    return f"{true}/{total} ({100 * true / total:.0f}%)" if total else "-"


def table(rows: list[dict]) -> str:
    head = ("| case | program | findings | groups | true | noise | false | unclassified | missed | misnamed "
            "| warn+ true | summary lines |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows + [total(rows)]:
        groups = "-" if r["groups"] is None else r["groups"]
        lines.append(f"| {r['case']} | {r['program']} | {r['findings']} | {groups} | {r[TRUE]} | {r[NOISE]} | {r[FALSE]} "
                     f"| {r['unclassified']} | {len(r['missed'])} | {r['misnamed']} "
                     f"| {share(r['loud_true'], r['loud_total'])} | {r['summary']} |")
    return "\n".join(lines)


def total(rows: list[dict]) -> dict:
    summed = {key: sum(r[key] for r in rows) for key in
              ("findings", TRUE, NOISE, FALSE, "unclassified", "misnamed", "loud_true", "loud_total", "summary")}
    groups = None if any(r["groups"] is None for r in rows) else sum(r["groups"] for r in rows)
    return {"case": "**all**", "program": "", "groups": groups, "missed": [m for r in rows for m in r["missed"]], **summed}


def details(traced: Traced) -> list[str]:
    """The findings a developer should not have been shown, the true ones not shown, the misnamed ones."""
    out = []
    for finding in traced.findings:
        verdict = traced.verdict(finding)
        if verdict in (FALSE, None):
            out.append(f"  {verdict or 'unclassified'}: {finding['severity']} {finding['message']}")
    out.extend(f"  missed: {t.label()} ({t.why})" for t in traced.case.truths
               if t.verdict == TRUE and not any(traced.matches(t, f) for f in traced.findings))
    out.extend(f"  misnamed: {line}" for line in misnamed(traced))
    return [f"{traced.case.name}:", *out] if out else []


def from_directory(cases: list[Case], directory: Path) -> Traced:
    name = directory.name.removeprefix("fsaudit-")
    case = max((c for c in cases if name.startswith(c.name + "-")), key=lambda c: len(c.name), default=None)
    if case is None:
        sys.exit(f"accuracy: {directory} is not the work directory of a case")
    return Traced(case, directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument("--keep", action="store_true", help="leave each case's work directory and say where")
    parser.add_argument("--details", action="store_true", help="list the false, unclassified and missed findings")
    parser.add_argument("--from", dest="recorded", nargs="+", type=Path, help="work directories of an earlier --keep run")
    args = parser.parse_args()
    cases = all_cases()
    if args.case:
        unknown = set(args.case) - {c.name for c in cases}
        if unknown:
            sys.exit(f"accuracy: no such case: {', '.join(sorted(unknown))}")
        cases = [c for c in cases if c.name in args.case]
    started = time.monotonic()
    results = []
    if args.recorded:
        results = [from_directory(cases, d) for d in args.recorded]
    else:
        for case in cases:
            absent = missing(case)
            if absent:
                sys.exit(f"accuracy: {case.name} needs {', '.join(absent)}: run `make test-tools`")
            work = new_workdir(case, None)
            print(f"{case.name} ...", file=sys.stderr, flush=True)
            results.append(run_case(case, work))
    rows = [row(t) for t in results]
    print(table(rows))
    if args.details:
        print()
        print("\n".join(line for t in results for line in details(t)))
    if not args.recorded:
        print(f"\n{len(results)} cases in {time.monotonic() - started:.0f} s "
              f"({', '.join('%s %.1f s' % (r['case'], r['seconds']) for r in rows)})", file=sys.stderr)
        for t in results:
            if args.keep:
                print(f"kept {t.work}", file=sys.stderr)
            else:
                shutil.rmtree(t.work, ignore_errors=True)


if __name__ == "__main__":
    main()
