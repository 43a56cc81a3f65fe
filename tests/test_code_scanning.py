"""What GitHub code scanning and GitHub Actions need from SARIF and --format github
(cli-and-report.md, "SARIF for code scanning"): results at the source line relative to
%SRCROOT%, fingerprints that stay the same from run to run and checkout to checkout,
rule help from the rule pages, suppressed findings with their reason; annotations at
the same lines.

A Python program in a git repository made here, traced from a subdirectory (the source
root is found by walking up to .git) in two clones of the repository at different paths.
It saves three files naively from one line of code: one in the checkout, one in the cache
(suppressed by the repository's fsaudit.toml), one in a temporary directory (random name).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, fsaudit
from test_engine import D, Stream, analyse
from fsaudit.analysis.config import DEFAULT_HELP_URI
from fsaudit.analysis.rules import RULES
from fsaudit.outputs.github import render_github
from fsaudit.outputs.report import build_report

PYTHON = "/usr/bin/python3.11"      # CPython 3.11: --stacks names its Python lines (docs/stacks.md)
APP = """\
import os
import tempfile


def save(path, data):
    with open(path + ".tmp", "w") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


save("state.json", "{}")
os.makedirs("cache", exist_ok=True)
save("cache/index.json", "{}")
save(os.path.join(tempfile.mkdtemp(), "scratch.json"), "{}")
"""
REPLACE_LINE = 8
REASON = "the cache is rebuilt when it is lost"
CONFIG = f'[[suppress]]\nrule = "FS101"\npath = "cache/"\nreason = "{REASON}"\n'
SARIF_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "sarif-schema-2.1.0.json").read_text())
SRCROOT = "%SRCROOT%"
RANDOM_TEMPORARY = re.compile(r"tmp[a-z0-9_]{8}")


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory) -> dict[str, Path]:
    """The repository, and a clone of it elsewhere: two checkouts of the same commit."""
    first = tmp_path_factory.mktemp("one") / "project"
    (first / "sub").mkdir(parents=True)
    (first / "app.py").write_text(APP)
    (first / "fsaudit.toml").write_text(CONFIG)
    (first / "sub" / ".keep").write_text("")
    _git("init", "-q", cwd=first)
    _git("add", ".", cwd=first)
    _git("commit", "-q", "-m", "app", cwd=first)
    second = tmp_path_factory.mktemp("two") / "clone"
    _git("clone", "-q", str(first), str(second), cwd=first.parent)
    return {"one": first, "two": second}


class Scan:
    def __init__(self, checkout: Path, out: Path, proc: subprocess.CompletedProcess) -> None:
        self.checkout = checkout
        self.proc = proc
        self.sarif = json.loads((out / "r.sarif").read_text())
        self.report = json.loads((out / "r.json").read_text())
        self.annotations = (out / "annotations.txt").read_text()
        self.events = out / "e.jsonl"
        self.run = self.sarif["runs"][0]
        self.results = self.run["results"]

    def result(self, rule: str, suppressed: bool = False) -> dict:
        [result] = [r for r in self.results if r["ruleId"] == rule and ("suppressions" in r) == suppressed]
        return result


@pytest.fixture(scope="module")
def scans(bpf, checkouts, tmp_path_factory):
    """scans(checkout, *options): `fsaudit run --sarif` of the program from the checkout's
    sub/, with the report, event log and annotations; each traced once."""
    done: dict[tuple, Scan] = {}

    def scan(name: str, *options: str) -> Scan:
        key = (name, options)
        if key not in done:
            out = tmp_path_factory.mktemp("scan")
            proc = fsaudit("run", "--sarif", str(out / "r.sarif"), "--json", str(out / "r.json"),
                           "--events", str(out / "e.jsonl"), "--format", "github", "-o", str(out / "annotations.txt"),
                           "--fail-on", "never", *options, "--", PYTHON, str(checkouts[name] / "app.py"),
                           cwd=checkouts[name] / "sub")
            assert proc.returncode == 0, proc.stderr
            done[key] = Scan(checkouts[name], out, proc)
        return done[key]

    return scan


def test_sarif_locates_results_at_the_source_line_relative_to_srcroot(scans):
    scan = scans("one")
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(scan.sarif)
    # --sarif turned --stacks on; the source root is the repository, found from sub/
    assert all(f["stack"] for f in scan.report["findings"])
    assert scan.report["source_root"] == str(scan.checkout)
    assert scan.run["originalUriBaseIds"] == {SRCROOT: {"uri": scan.checkout.as_uri() + "/"}}
    fs101 = scan.result("FS101")
    assert fs101["locations"] == [{"physicalLocation": {"artifactLocation": {"uri": "app.py", "uriBaseId": SRCROOT},
                                                        "region": {"startLine": REPLACE_LINE}},
                                   "message": {"text": f"save (app.py:{REPLACE_LINE})"}}]
    # the data files: related locations, under the root relative to it, elsewhere absolute; and in the message
    [in_checkout, in_tmp] = [location["physicalLocation"]["artifactLocation"] for location in fs101["relatedLocations"]]
    assert in_checkout == {"uri": "sub/state.json.tmp", "uriBaseId": SRCROOT}
    assert re.fullmatch(r"file:///tmp/tmp[a-z0-9_]{8}/scratch\.json\.tmp", in_tmp["uri"]) and "uriBaseId" not in in_tmp
    assert "files: sub/state.json.tmp, /tmp/tmp" in fs101["message"]["text"]
    assert fs101["partialFingerprints"] == {"fsauditCause/v1": f"FS101:save (app.py:{REPLACE_LINE})"}


def test_a_suppressed_finding_is_a_suppressed_result_with_its_reason(scans):
    scan = scans("one")
    hidden = str(scan.checkout / "sub" / "cache" / "index.json.tmp")
    assert hidden not in [f["path"] for f in scan.report["findings"]]
    assert [(f["rule"], f["path"], f["reason"]) for f in scan.report["suppressed_findings"]] == [
        ("FS101", hidden, REASON)]
    suppressed = scan.result("FS101", suppressed=True)
    assert suppressed["suppressions"] == [{"kind": "external", "status": "accepted", "justification": REASON}]
    assert suppressed["locations"][0]["physicalLocation"]["region"] == {"startLine": REPLACE_LINE}
    assert [r["physicalLocation"]["artifactLocation"] for r in suppressed["relatedLocations"]] == [
        {"uri": "sub/cache/index.json.tmp", "uriBaseId": SRCROOT}]
    # not the same alert as the findings of that line that are not suppressed
    assert suppressed["partialFingerprints"] == {
        "fsauditCause/v1": f"FS101:save (app.py:{REPLACE_LINE}) suppressed cache/"}


def test_each_rule_has_its_page_as_help_and_a_help_uri(scans):
    rules = scans("one").run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [rule.code for rule in RULES]
    for described, rule in zip(rules, RULES):
        page = (ROOT / "fsaudit" / "analysis" / "rules" / "pages" / f"{rule.code}.md").read_text()
        assert described["help"] == {"text": page, "markdown": page}
        assert described["helpUri"] == DEFAULT_HELP_URI.format(code=rule.code)
        assert described["fullDescription"]["markdown"] in page and not described["fullDescription"]["text"].startswith("#")
    fs101 = rules[0]
    assert fs101["fullDescription"]["text"].startswith("A `rename`, `renameat`, `renameat2`, `link` or `linkat` publishes")


def test_fingerprints_are_the_same_in_another_checkout_and_another_run(scans):
    one, two = scans("one"), scans("two")
    fingerprints = [[r["partialFingerprints"] for r in scan.results] for scan in (one, two)]
    assert fingerprints[0] == fingerprints[1]
    assert len({json.dumps(f) for f in fingerprints[0]}) == len(fingerprints[0]) == 3     # one per result
    # and the program's files moved with the checkout
    assert one.result("FS101")["locations"] == two.result("FS101")["locations"]


def test_fingerprints_without_stacks_name_the_path_pattern_without_temporary_names(scans):
    one, two = scans("one", "--no-stacks"), scans("two", "--no-stacks")
    assert not any(f["stack"] for f in one.report["findings"])
    fingerprints = [sorted(r["partialFingerprints"]["fsauditCause/v1"] for r in scan.results) for scan in (one, two)]
    assert fingerprints[0] == fingerprints[1]
    assert len(set(fingerprints[0])) == len(fingerprints[0])
    assert "FS101:python3.11:sub" in fingerprints[0] and "FS101:python3.11:/tmp/tmp*" in fingerprints[0]
    assert not [f for f in fingerprints[0] if str(one.checkout) in f or RANDOM_TEMPORARY.search(f)
                or re.search(r"\d{3,}", f.split(":", 1)[1])]
    # without a line of code, a result is at its first file
    fs101 = next(r for r in one.results if r["partialFingerprints"]["fsauditCause/v1"] == "FS101:python3.11:sub")
    assert fs101["locations"] == [{"physicalLocation": {"artifactLocation": {"uri": "sub/state.json.tmp",
                                                                              "uriBaseId": SRCROOT}}}]
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(one.sarif)


def test_github_annotations_point_at_the_source_line_of_a_traced_run(scans):
    scan = scans("one")
    lines = scan.annotations.splitlines()
    fs101 = next(line for line in lines if line.startswith("::error "))
    head = f"::error file=app.py,line={REPLACE_LINE},title=FS101 rename-unsynced-data::"
    assert fs101.startswith(head)
    message = fs101[len(head):]
    assert "%0Afiles: sub/state.json.tmp, /tmp/tmp" in message and "%0Afix: call f.flush()" in message
    assert "\r" not in message and not any(line.startswith("::") for line in message.split("%0A")[1:])
    assert lines[-1] == "fsaudit: 2 error, 3 warning in 2 groups"
    # without stacks: at the data file, no line
    plain = scans("one", "--no-stacks").annotations.splitlines()
    assert any(line.startswith("::error file=sub/state.json.tmp,title=FS101 rename-unsynced-data::")
               for line in plain)


def test_github_annotations_from_a_recorded_log_are_the_live_runs(scans):
    scan = scans("one")
    replay = fsaudit("report", str(scan.events), "--format", "github", "--fail-on", "never", cwd=scan.checkout / "sub")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == scan.annotations


def test_source_root_and_help_uri_can_be_chosen(scans, tmp_path):
    scan = scans("one")
    config = tmp_path / "fsaudit.toml"
    config.write_text('help-uri = "https://docs.example.invalid/fsaudit/{name}.html#{code}"\n')
    out = tmp_path / "r.sarif"
    proc = fsaudit("report", str(scan.events), "--sarif", str(out), "--fail-on", "never", "--config", str(config),
                   "--source-root", str(scan.checkout / "sub"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(out.read_text())["runs"][0]
    assert run["tool"]["driver"]["rules"][0]["helpUri"] == "https://docs.example.invalid/fsaudit/rename-unsynced-data.html#FS101"
    assert run["originalUriBaseIds"] == {SRCROOT: {"uri": (scan.checkout / "sub").as_uri() + "/"}}
    fs101 = next(r for r in run["results"] if r["ruleId"] == "FS101" and "suppressions" not in r)
    # app.py is outside that root now: a file URI; the data file under it, relative
    assert fs101["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": (scan.checkout / "app.py").as_uri()}
    assert {"uri": "state.json.tmp", "uriBaseId": SRCROOT} in [
        location["physicalLocation"]["artifactLocation"] for location in fs101["relatedLocations"]]


@pytest.mark.parametrize("option, value, message", [
    ("--source-root", "/nonexistent/checkout", "--source-root /nonexistent/checkout: no such directory"),
    ("--config", 'help-uri = "https://x.invalid/{rule}"',
     "configuration: {config}.help-uri: unknown field {{rule}} (known: {{code}}, {{name}})"),
])
def test_a_bad_source_root_or_help_uri_is_one_line_and_exit_2(scans, tmp_path, option, value, message):
    config = tmp_path / "bad.toml"
    if option == "--config":
        config.write_text(value + "\n")
        value = str(config)
    proc = fsaudit("report", str(scans("one").events), option, value, "--sarif", "r.sarif", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (2, f"fsaudit: {message.format(config=config)}\n")
    assert not (tmp_path / "r.sarif").exists()


def test_github_escapes_what_the_runner_would_read_as_the_end_of_a_property_or_the_command():
    """actions/toolkit: % CR LF in the message; also : and , in a property. A name's own
    newline goes through printable() first, so no line of it can read as a command."""
    name = f"{D}/50%,a:b\n::error::forged"
    s = Stream(argv=("app",))
    fd = s.open(name + ".tmp")
    s.write(fd, name + ".tmp", 10)
    s.close(fd, name + ".tmp")
    s.ev("rename", path=name + ".tmp", path2=name, stack=["rename", f"save ({D}/x,y:z.py:3)"])
    s.exit(0)
    report = build_report(analyse(s.events), mode="report", target={"argv": [], "pid": None, "exit": None},
                          started_at="2026-01-01T00:00:00.000Z", duration_s=0.5, tool_version="0.1.0", cwd=D,
                          source_root=D)
    fs101 = next(line for line in render_github(report, "error").splitlines() if line.startswith("::error "))
    assert fs101.startswith("::error file=x%2Cy%3Az.py,line=3,title=FS101 rename-unsynced-data::app (pid 100) "
                            "renamed 50%25,a:b\\n::error::forged.tmp over 50%25,a:b\\n::error::forged while ")
    assert "\n" not in fs101 and "%0Afix: " in fs101
