"""The report (schema fsaudit.report/1) built from an engine, and its text, SARIF and JUnit renderings."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from urllib.parse import quote

from .printable import printable
from ..analysis.rules import RULES

SCHEMA = "fsaudit.report/1"
SEVERITY_ORDER = ("error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITY_ORDER)}
SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
FINDING_KEYS = ("rule", "name", "severity", "pid", "tid", "path", "target_path", "message",
                "evidence", "runtime", "stack", "fix", "notes", "count")


def _weighted_median(counter: Counter) -> int | None:
    total = sum(counter.values())
    if not total:
        return None
    seen = 0
    for value in sorted(counter):
        seen += counter[value]
        if seen * 2 >= total:
            return value
    return None


def _median(values: list) -> int | None:
    return sorted(values)[(len(values) - 1) // 2] if values else None


def _exit(code, signal) -> dict:
    return {"code": code, "signal": signal}


def _process(info) -> dict:
    io = info.io
    return {
        "pid": info.pid, "ppid": info.ppid, "exe": info.exe, "argv": info.argv or [],
        "runtime": info.runtime,
        "exit": _exit(info.exit_code, info.exit_signal) if info.exited else None,
        "io": {
            "writes": io.writes, "bytes_written": io.bytes_written,
            # Write runs are folded in the kernel into calls, bytes and the largest call:
            # max is exact, p50 exact for uniform runs (see engine.run_call_sizes).
            "write_size_p50": _weighted_median(io.write_sizes),
            "write_size_max": max(io.write_sizes) if io.write_sizes else None,
            "fsync": io.fsync, "fdatasync": io.fdatasync, "sync_file_range": io.sync_file_range,
            "o_sync_writes": io.o_sync_writes, "o_direct_writes": io.o_direct_writes,
            "dir_syncs": io.dir_syncs, "renames": io.renames, "links": io.links,
            "fsync_latency_p50_us": _median(io.fsync_latencies_us),
            "fsync_latency_max_us": max(io.fsync_latencies_us) if io.fsync_latencies_us else None,
        },
    }


def build_report(engine, *, mode: str, target: dict, started_at: str, duration_s: float,
                 tool_version: str, warnings: list[str] = (), incomplete: list[str] = ()) -> dict:
    """The JSON report of a finished engine. Missing target fields come from the root process.

    warnings: what fsaudit could not see or do; incomplete: why events may be
    missing besides lost ones (each makes the report incomplete)."""
    root = engine.processes.get(engine.root_pid)
    target = dict(target)
    if target.get("pid") is None:
        target["pid"] = engine.root_pid
    if not target.get("argv") and root is not None:
        target["argv"] = root.argv or []
    if not target.get("exit"):
        target["exit"] = engine.root_exit
    files = [{"path": s.path, "writes": s.writes, "bytes_written": s.bytes_written, "syncs": s.syncs,
              "dirty_bytes_at_end": s.dirty_bytes, "last_sync_at": s.last_sync_at}
             for s in engine.files.values() if s.in_scope and not s.is_dir and (s.writes or s.syncs)]
    findings = sorted(engine.findings, key=lambda f: (SEVERITY_RANK[f.severity], f.rule, f.path or "", f.pid))
    summary = Counter(f.severity for f in findings)
    lost = engine.counts.lost_events
    incomplete = ([f"{lost} events were lost"] if lost else []) + list(incomplete)
    config = engine.config
    return {
        "schema": SCHEMA,
        "tool": {"name": "fsaudit", "version": tool_version},
        "mode": mode,
        "target": target,
        "started_at": started_at,
        "duration_s": duration_s,
        "complete": not incomplete,
        "incomplete": incomplete,
        "warnings": list(warnings),
        "counts": {"events": engine.counts.events, "lost_events": lost,
                   "processes": len(engine.processes), "files": len(files)},
        "config": {"path": config.path, "suppressed": [
            {"rule": s.rule, "path": s.path, "reason": s.reason, "hidden": hidden}
            for s, hidden in zip(config.suppressions, engine.hidden_by_suppression())]},
        "processes": [_process(info) for info in engine.processes.values()],
        "files": sorted(files, key=lambda f: f["path"]),
        "findings": [{key: getattr(f, key) for key in FINDING_KEYS} for f in findings],
        "summary": {name: summary.get(name, 0) for name in SEVERITY_ORDER},
    }


def exit_status(report: dict, fail_on: str) -> int | None:
    """1 when a finding is at or above fail_on ("never" disables), else None."""
    limit = SEVERITY_RANK.get(fail_on)
    if limit is None:
        return None
    return 1 if any(SEVERITY_RANK[f["severity"]] <= limit for f in report["findings"]) else None


def render_text(report: dict) -> str:
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


FRAME_LOCATION = re.compile(r"^(?P<function>.*) \((?P<file>.+):(?P<line>\d+)\)$")


# Where toolchains and system packages keep their sources (and Rust's std
# records its own): frames there are the runtime's, not the program's.
SYSTEM_SOURCES = ("/usr/", "/lib/", "/rustc/", "<")


def code_frame(stack: list) -> str | None:
    """The innermost frame that names a file and line outside the system's
    sources (the program's own code), else the innermost with a file and line."""
    located = [(frame, match["file"]) for frame in stack if (match := FRAME_LOCATION.match(frame))]
    return next((frame for frame, path in located if not path.startswith(SYSTEM_SOURCES)),
                located[0][0] if located else None)


def _raw_bytes(path: str) -> bytes:
    """The bytes a path was made of (a log can also carry surrogates os.fsdecode never makes)."""
    try:
        return os.fsencode(path)
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogatepass")


def _uri(path: str) -> str:
    """A file URI (absolute paths) or a relative reference: the raw bytes percent-encoded,
    so that any name, not UTF-8 or with control characters, is a valid URI."""
    quoted = quote(_raw_bytes(path), safe="/")
    return "file://" + quoted if path.startswith("/") else quoted


def _source_location(frame: str) -> dict:
    match = FRAME_LOCATION.match(frame)
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(match["file"])},
                                 "region": {"startLine": int(match["line"])}},
            "message": {"text": printable(frame)}}


def render_sarif(report: dict) -> dict:
    """SARIF 2.1.0, valid UTF-8 whatever the names: text through printable(), URIs percent-encoded."""
    rule_index = {rule.code: index for index, rule in enumerate(RULES)}
    results = []
    for finding in report["findings"]:
        result = {"ruleId": finding["rule"], "ruleIndex": rule_index[finding["rule"]],
                  "level": SARIF_LEVEL[finding["severity"]], "message": {"text": printable(finding["message"])},
                  "properties": {"pid": finding["pid"], "count": finding["count"], "fix": printable(finding["fix"]),
                                 "runtime": finding["runtime"] and printable(finding["runtime"]),
                                 "notes": [printable(note) for note in finding.get("notes", [])],
                                 "evidence": [{key: printable(value) if isinstance(value, str) else value
                                               for key, value in event.items()} for event in finding["evidence"]]}}
        locations = []
        source = code_frame(finding.get("stack") or [])
        if source:
            # The line of code first: it is what code-scanning views annotate.
            locations.append(_source_location(source))
        if finding["path"]:
            locations.append({"physicalLocation": {"artifactLocation": {"uri": _uri(finding["path"])}}})
        if locations:
            result["locations"] = locations
        if finding.get("stack"):
            result["stacks"] = [{"message": {"text": "where the call was made"}, "frames": [
                {"location": _source_location(frame) if FRAME_LOCATION.match(frame)
                 else {"message": {"text": printable(frame)}}} for frame in finding["stack"]]}]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "fsaudit", "version": report["tool"]["version"],
                "rules": [{"id": rule.code, "name": rule.name, "shortDescription": {"text": rule.summary},
                           "help": {"text": rule.fix},
                           "defaultConfiguration": {"level": SARIF_LEVEL[rule.severity]}} for rule in RULES],
            }},
            "results": results,
        }],
    }


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
