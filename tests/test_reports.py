"""The report formats, replay, exit statuses and configuration, on the output of real traced runs.

One live run (module fixture `recorded`) of tests/programs/rules.c with errors, warnings
and infos feeds most tests; the exit-status tests trace their own short runs.
"""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, fsaudit
from fsaudit.outputs.registry import FILE_OPTIONS, FORMATS, SUMMARY_FORMATS, write

SCHEMAS = ROOT / "tests" / "schemas"
REPORT_SCHEMA = ROOT / "docs" / "report.schema.json"
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
MODES = ("fs101", "dirfd", "fs102", "fs105", "ack_pair", "fs303")


class Recorded:
    def __init__(self, directory: Path, proc) -> None:
        self.dir = directory
        self.proc = proc
        self.events = directory / "events.jsonl"
        self.report = json.loads((directory / "report.json").read_text())
        self.sarif = json.loads((directory / "report.sarif").read_text())
        self.junit = directory / "report.xml"


@pytest.fixture(scope="module")
def recorded(bpf, build, tmp_path_factory) -> Recorded:
    """`fsaudit run` with every output, on a program with findings of each severity."""
    directory = tmp_path_factory.mktemp("recorded")
    for mode in MODES:
        (directory / mode).mkdir()
    proc = fsaudit("run", "--fail-on", "never", "--events", "events.jsonl", "--json", "report.json",
                   "--sarif", "report.sarif", "--junit", "report.xml", "--html", "report.html",
                   "--", str(build("rules", "-pthread")), *MODES, cwd=directory)
    assert proc.returncode == 0, proc.stderr
    rec = Recorded(directory, proc)
    severities = {f["severity"] for f in rec.report["findings"]}
    assert severities == {"error", "warning", "info"}, rec.report["findings"]
    return rec


def replay(rec: Recorded, *options: str, cwd: Path | None = None, log: Path | None = None):
    """`fsaudit report LOG --json OUT`: (process, report or None)."""
    out = (cwd or rec.dir) / "replayed.json"
    out.unlink(missing_ok=True)
    proc = fsaudit("report", str(log or rec.events), "--json", str(out), *options, cwd=cwd or rec.dir)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def summary(report: dict) -> list[tuple]:
    return [(f["rule"], f["path"], f["severity"]) for f in report["findings"]]


# Formats


def test_json_report_validates_against_the_published_schema(recorded):
    schema = json.loads(REPORT_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(recorded.report)
    # the schema has teeth: a finding without its rule, or an unknown severity, is rejected
    broken = json.loads(json.dumps(recorded.report))
    del broken["findings"][0]["rule"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(recorded.report))
    broken["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    # and its summary agrees with the findings, each in the one group that names it
    findings = recorded.report["findings"]
    for severity in SEVERITY_RANK:
        assert recorded.report["summary"][severity] == sum(f["severity"] == severity for f in findings)
    groups = {g["id"]: g for g in recorded.report["groups"]}
    assert sum(g["count"] for g in groups.values()) == len(findings)
    assert all(f["path"] in groups[f["group"]]["paths"] and f["rule"] == groups[f["group"]]["rule"] for f in findings)
    assert recorded.report["cwd"] == str(recorded.dir)


def test_sarif_validates_against_the_official_sarif_2_1_0_schema(recorded):
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(recorded.sarif)
    run = recorded.sarif["runs"][0]
    results = run["results"]
    # One result per group, at its files: --sarif captured stacks, but rules.c has no line tables.
    groups = recorded.report["groups"]
    assert [(r["ruleId"], r["properties"]["group"]) for r in results] == [(g["rule"], g["id"]) for g in groups]
    level = {"error": "error", "warning": "warning", "info": "note"}
    assert [r["level"] for r in results] == [level[g["severity"]] for g in groups]
    rules = run["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    for result, g in zip(results, groups):      # its files, under the cwd (the source root), relative to it
        files = [location["physicalLocation"]["artifactLocation"] for location in result["relatedLocations"]]
        assert files == [{"uri": path.removeprefix(f"{recorded.dir}/"), "uriBaseId": "%SRCROOT%"} for path in g["paths"]]
        assert result["locations"] == [{"physicalLocation": result["relatedLocations"][0]["physicalLocation"]}]


def _failing_cases(junit_text: str) -> list[tuple[str, str]]:
    root = ET.fromstring(junit_text)
    cases = root.findall(".//testcase")
    failing = [(c.get("classname").split()[0], c.get("name")) for c in cases if c.find("failure") is not None]
    assert root.get("failures") == str(len(failing)) and root.get("tests") == str(len(cases))
    return sorted(failing)


@pytest.mark.parametrize("fail_on", ["error", "warning", "info", "never"])
def test_junit_has_one_failing_testcase_per_group_at_or_above_fail_on(recorded, tmp_path, fail_on):
    groups = recorded.report["groups"]
    assert all(g["files"] == 1 for g in groups)      # each testcase is named by its group's file
    limit = SEVERITY_RANK.get(fail_on, -1)
    expected = sorted((g["rule"], g["paths"][0]) for g in groups if SEVERITY_RANK[g["severity"]] <= limit)
    junit = tmp_path / "junit.xml"
    proc = fsaudit("report", str(recorded.events), "--junit", str(junit), "--fail-on", fail_on)
    assert proc.returncode == (1 if expected else 0), proc.stderr
    assert _failing_cases(junit.read_text()) == expected
    if fail_on == "never":   # the live run's own JUnit file, written with --fail-on never
        assert _failing_cases(recorded.junit.read_text()) == []


def test_summaries_lead_with_groups_and_print_paths_under_the_cwd_relative(recorded):
    report = recorded.report
    here = str(recorded.dir) + "/"
    assert all(f["path"].startswith(here) for f in report["findings"])      # the report keeps them absolute
    text = FORMATS["text"].render(report, "never")
    concise = FORMATS["concise"].render(report, "never").splitlines()
    assert here not in text and here not in "\n".join(concise)
    assert "fs101/a.tmp" in text and "dirfd/sub/t.tmp" in concise[0]
    # concise: one line per group, in the report's order, then the totals
    assert [line.split(":")[0] for line in concise[:-1]] == [
        f"{g['rule']} {g['severity']} {g['name']}" for g in report["groups"]]
    assert concise[-1] == text.splitlines()[0] == "fsaudit: 2 error, 3 warning, 1 info in 6 groups"
    # text: each warning and error group once, the fix once for each rule's run of groups;
    # the info groups folded to a line a rule, without their fix
    loud = [g for g in report["groups"] if g["severity"] != "info"]
    for group in loud:
        assert text.count(f"  {group['rule']} {group['name']}") == sum(
            g["rule"] == group["rule"] for g in report["groups"])
    runs = {(g["severity"], g["rule"], g["fix"]) for g in loud}
    assert text.count("    fix: ") == len(runs) and all(text.count(f"    fix: {fix}") == 1 for _s, _r, fix in runs)
    assert text.count("  FS105 unsynced-at-exit") == 1 and "fs105/out.dat" in text


# The registry of formats


# What `recorded` asked `run` to write for each file option.
RECORDED_FILES = {"--json": "report.json", "--sarif": "report.sarif", "--junit": "report.xml", "--html": "report.html"}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_registered_format_renders_the_recorded_report_as_run_wrote_it(recorded, name):
    """A format is a pure function of the report document: rendering the recorded
    document again gives the bytes `run` wrote (to its file, or as the summary on stderr)."""
    fmt = FORMATS[name]
    rendering = fmt.render(recorded.report, "never")
    assert isinstance(rendering, (str, dict))
    written = io.StringIO()
    write(fmt, recorded.report, "never", written)
    assert written.getvalue()
    if fmt.option:
        assert written.getvalue() == (recorded.dir / RECORDED_FILES[fmt.option]).read_text()
    elif name == "text":     # the summary run printed
        assert recorded.proc.stderr.endswith(written.getvalue())
    else:                    # what `report` prints in that form, from the same log in the same directory
        proc = fsaudit("report", str(recorded.events), "--fail-on", "never", "--format", name, cwd=recorded.dir)
        assert proc.stdout == written.getvalue()


@pytest.mark.parametrize("name", [*FORMATS, "yaml"])
def test_format_accepts_the_registrys_summary_formats_and_nothing_else(recorded, tmp_path, name):
    proc = fsaudit("report", str(recorded.events), "--fail-on", "never", "--format", name, "-o", "summary", cwd=tmp_path)
    if name in SUMMARY_FORMATS:
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "summary").read_text()
    else:
        choices = ", ".join(repr(choice) for choice in SUMMARY_FORMATS)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1
        assert proc.stderr.startswith(f"fsaudit: Invalid value for '--format': {name!r} is not one of {choices}.")
        assert not (tmp_path / "summary").exists()


@pytest.mark.parametrize("command", ["run", "attach", "report"])
def test_each_command_offers_the_registrys_file_options_and_format_choices(command):
    import typer

    from fsaudit.cli import app

    params = {name: param for param in typer.main.get_command(app).commands[command].params for name in param.opts}
    for option, fmt in FILE_OPTIONS.items():
        assert params[option].help == fmt.help, option
    usage = fsaudit(command, "--help", env={**os.environ, "COLUMNS": "200"}).stdout
    assert f"<{'|'.join(SUMMARY_FORMATS)}>" in usage


# Replay


def test_replayed_log_gives_byte_identical_findings(recorded):
    proc, report = replay(recorded, "--fail-on", "never")
    assert proc.returncode == 0, proc.stderr
    assert report["mode"] == "report"
    assert json.dumps(report["findings"], indent=2) == json.dumps(recorded.report["findings"], indent=2)
    assert report["summary"] == recorded.report["summary"]
    assert report["files"] == recorded.report["files"]
    assert report["scope"] == recorded.report["scope"]
    assert report["target"]["pid"] == recorded.report["target"]["pid"]
    assert report["target"]["exit"] == recorded.report["target"]["exit"]


def test_malformed_event_log_is_exit_2_naming_the_line(recorded, tmp_path):
    lines = recorded.events.read_text().splitlines(keepends=True)
    cases = {
        3: ["{not json\n"],
        4: ["[1, 2]\n"],
        5: ['{"t": 1.0, "tid": 1, "ret": 0}\n'],            # no syscall, no pid
        1: ["not a header\n"],
    }
    for number, replacement in cases.items():
        log = tmp_path / f"bad{number}.jsonl"
        log.write_text("".join(lines[:number - 1] + replacement + lines[number:]))
        proc, report = replay(recorded, log=log, cwd=tmp_path)
        assert proc.returncode == 2, (number, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert f"line {number}:" in proc.stderr and str(log) in proc.stderr
        assert report is None
    # a malformed last line that is complete (ends with a newline) is an error too, not "truncated"
    # (in place of the trailer: a line after the trailer is an error of its own)
    log = tmp_path / "badlast.jsonl"
    log.write_text("".join(lines[:-1] + ["{oops\n"]))
    proc, _ = replay(recorded, log=log, cwd=tmp_path)
    assert proc.returncode == 2 and f"line {len(lines)}: malformed JSON" in proc.stderr, proc.stderr


def test_truncated_last_line_is_reported_and_skipped(recorded, tmp_path):
    lines = recorded.events.read_text().splitlines(keepends=True)
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(lines[:-1]))
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    expected_proc, expected = replay(recorded, log=whole, cwd=tmp_path)
    proc, report = replay(recorded, log=cut, cwd=tmp_path)
    assert f"line {len(lines)}" in proc.stderr and "truncated" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert report["findings"] == expected["findings"]
    # exit per findings: the FS101 errors make it 1 with the default --fail-on
    assert proc.returncode == expected_proc.returncode == 1
    assert fsaudit("report", str(cut), "--fail-on", "never").returncode == 0


# Exit statuses of run


@pytest.mark.parametrize("modes, options, status", [
    (["fs101"], [], 1),                                       # an error, default --fail-on error
    (["fs101", "status=7"], ["--fail-on", "never"], 7),       # never: the command's own status
    (["fs102", "status=5"], [], 5),                           # warnings only: the command's status
    (["fs102", "status=5"], ["--fail-on", "warning"], 1),     # ... unless --fail-on warning
])
def test_run_exit_status(bpf, build, tmp_path, modes, options, status):
    for mode in modes:
        if not mode.startswith("status="):
            (tmp_path / mode).mkdir()
    proc = fsaudit("run", "--json", "report.json", *options, "--", str(build("rules", "-pthread")), *modes,
                   cwd=tmp_path)
    assert proc.returncode == status, proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    expected_exit = int(modes[-1].split("=")[1]) if modes[-1].startswith("status=") else 0
    assert report["target"]["exit"] == {"code": expected_exit, "signal": None}
    assert {f["severity"] for f in report["findings"]} == ({"error"} if "fs101" in modes else {"warning"})


# Configuration

# The config files are written in another directory than the recording: the glob is absolute.
CONFIG = """\
disable = ["FS105"]

[severity]
FS102 = "error"

[[suppress]]
rule = "FS101"
path = "/**/fs101/*.tmp"
reason = "the fs101 fixture writes scratch data on purpose"
"""


def _configured(baseline: dict, recorded_dir: Path) -> list[tuple]:
    """What CONFIG should make of the baseline findings."""
    out = []
    for rule, path, severity in summary(baseline):
        if rule == "FS105":
            continue
        if rule == "FS101" and path == str(recorded_dir / "fs101/a.tmp"):
            continue
        out.append((rule, path, "error" if rule == "FS102" else severity))
    return out


@pytest.mark.parametrize("where", ["fsaudit.toml", "--config", "pyproject.toml"])
def test_config_disables_overrides_and_suppresses(recorded, tmp_path, where):
    baseline = recorded.report
    rules = {f["rule"] for f in baseline["findings"]}
    assert {"FS101", "FS102", "FS105"} <= rules
    assert sum(f["rule"] == "FS101" for f in baseline["findings"]) == 2     # fs101/a.tmp and dirfd/sub/t.tmp
    if where == "fsaudit.toml":
        (tmp_path / "fsaudit.toml").write_text(CONFIG)
        options = []
    elif where == "pyproject.toml":
        (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n\n" + CONFIG
                                                 .replace("disable", "[tool.fsaudit]\ndisable", 1)
                                                 .replace("[severity]", "[tool.fsaudit.severity]")
                                                 .replace("[[suppress]]", "[[tool.fsaudit.suppress]]"))
        options = []
    else:
        config = tmp_path / "elsewhere.toml"
        config.write_text(CONFIG)
        options = ["--config", str(config)]
    proc, report = replay(recorded, "--fail-on", "never", *options, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert summary(report) == sorted(_configured(baseline, recorded.dir),
                                     key=lambda f: (SEVERITY_RANK[f[2]], f[0], f[1] or ""))
    assert report["summary"]["error"] == sum(f[2] == "error" for f in summary(report))
    # without the config, the same replay is the baseline again
    (tmp_path / "fsaudit.toml").unlink(missing_ok=True)
    (tmp_path / "pyproject.toml").unlink(missing_ok=True)
    assert summary(replay(recorded, "--fail-on", "never", cwd=tmp_path)[1]) == summary(baseline)


@pytest.mark.parametrize("config, names", [
    ('colour = "red"\n', ["colour"]),
    ('[severity]\nFS102 = "fatal"\n', ["FS102", "fatal"]),
    ('[[suppress]]\nrule = "FS101"\npath = "*.tmp"\n', ["reason"]),
    ('disable = ["FS999"]\n', ["disable", "FS999"]),
    ('[severity]\nFS999 = "error"\n', ["FS999"]),
    ('[[suppress]]\nrule = "FS101"\nreason = "why"\n', ["path"]),
    ('disable = "FS105"\n', ["disable"]),
    ('disable = [\n', ["fsaudit.toml"]),                      # not TOML at all
])
def test_malformed_config_is_exit_2_naming_the_key(recorded, tmp_path, config, names):
    (tmp_path / "fsaudit.toml").write_text(config)
    proc, report = replay(recorded, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for name in names:
        assert name in proc.stderr
    assert report is None
    # the same file through --config, from another directory
    other = tmp_path / "other"
    other.mkdir()
    proc = fsaudit("report", str(recorded.events), "--config", str(tmp_path / "fsaudit.toml"), cwd=other)
    assert proc.returncode == 2 and all(name in proc.stderr for name in names if name != "fsaudit.toml")
