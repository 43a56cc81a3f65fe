"""Findings grouped by cause (rules.md "Groups: one cause, one entry") and the outputs
that lead with the groups; messages that fold several names name them all.

Real traced runs of tests/programs/groups.c, their logs replayed through every
format; hand-written event streams (docs/events.md) for the exact text of the
summaries and the grouping rules themselves.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import subprocess
import xml.etree.ElementTree as ET
from io import StringIO

import jsonschema
import pytest

from conftest import PROGRAMS, ROOT, fsaudit
from test_engine import D, Stream
import fsaudit.analysis.findings as findings_module
from fsaudit.analysis.config import EngineConfig, Suppression
from fsaudit.analysis.engine import Engine
from fsaudit.analysis.grouping import own_frame, path_pattern, path_patterns, stable_pattern
from fsaudit.outputs.concise import render_concise
from fsaudit.outputs.github import render_github
from fsaudit.outputs.html import embedded
from fsaudit.outputs.json import write_json
from fsaudit.outputs.junit import render_junit
from fsaudit.outputs.report import build_report
from fsaudit.outputs.sarif import render_sarif
from fsaudit.outputs.statistics import render_statistics
from fsaudit.outputs.text import render_text

SOURCE = PROGRAMS / "groups.c"
RENAME_LINE = next(n for n, text in enumerate(SOURCE.read_text().splitlines(), 1) if text.endswith("// @rename"))
CALL_SITE = f"save_naive ({SOURCE}:{RENAME_LINE})"
FIX_101 = ("flush the runtime's buffer and fsync the file before renaming it over the target; "
           "then fsync the target's directory")


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    """groups.c with line tables and frame pointers, so that --stacks names the call site."""
    exe = tmp_path_factory.mktemp("groups") / "groups"
    subprocess.run(["cc", "-g", "-O1", "-fno-omit-frame-pointer", "-o", str(exe), str(SOURCE)], check=True)
    return exe


def of_rule(report: dict, rule: str) -> list[dict]:
    return [group for group in report["groups"] if group["rule"] == rule]


# Real traced runs


def test_one_call_site_in_two_processes_is_one_group_with_both_files(trace, program, tmp_path):
    t = trace([str(program), "sites"], "--stacks")
    assert t.returncode == 0, t.stderr
    a, b = str(tmp_path / "alpha/a.tmp"), str(tmp_path / "beta/b.tmp")
    fs101 = [f for f in t.report["findings"] if f["rule"] == "FS101"]
    assert sorted(f["path"] for f in fs101) == [a, b] and len({f["pid"] for f in fs101}) == 2
    [group] = of_rule(t.report, "FS101")
    assert group["call_site"] == CALL_SITE and group["pattern"] is None
    assert (group["count"], group["files"], group["paths"], group["exe"]) == (2, 2, [a, b], str(program))
    assert {f["group"] for f in fs101} == {group["id"]}
    # the group's message names neither file as if it were both
    assert a not in group["message"] and b not in group["message"] and "2 files" in group["message"]
    # The summary leads with the group: its files relative to the cwd, and the fix once.
    summary = t.stderr.splitlines()
    start = summary.index(f"  FS101 rename-unsynced-data [2 findings, 2 files]: {group['message']}")
    assert summary[start + 1:start + 5] == ["    alpha/a.tmp", "    beta/b.tmp", f"    at: {CALL_SITE}",
                                            f"    fix: {FIX_101}"]
    assert t.stderr.count(FIX_101) == 1


def test_without_stacks_the_image_and_path_pattern_group(trace, program, tmp_path):
    t = trace([str(program), "sites"])
    assert t.returncode == 0, t.stderr
    # FS101 in alpha/ and beta/: two patterns, two groups (the digits of pytest's
    # directories stay: they are the cwd's)
    cwd = str(tmp_path)
    assert sorted((g["pattern"], g["paths"]) for g in of_rule(t.report, "FS101")) == [
        (f"{cwd}/alpha", [str(tmp_path / "alpha/a.tmp")]), (f"{cwd}/beta", [str(tmp_path / "beta/b.tmp")])]
    # FS102 on the two directories, both in the cwd: one group
    [fs102] = of_rule(t.report, "FS102")
    assert fs102["call_site"] is None and fs102["pattern"] == cwd and fs102["exe"] == str(program)
    assert fs102["paths"] == [str(tmp_path / "alpha"), str(tmp_path / "beta")]
    # and the summary names it relative to the cwd: the pattern is the cwd itself, "."
    assert "2 files in . by groups" in t.stderr and "beta/b.tmp" in t.stderr and cwd not in t.stderr


def test_renames_of_two_files_in_one_directory_name_both(trace, program, tmp_path):
    """git's lock-file dance: "renamed .git/HEAD (5 times)" was one HEAD and four config."""
    t = trace([str(program), "renames"])
    assert t.returncode == 0, t.stderr
    [finding] = [f for f in t.report["findings"] if f["rule"] == "FS102"]
    git = tmp_path / "git"
    assert finding["path"] == str(git) and finding["count"] == 5 and finding["target_path"] is None
    assert f"renamed or linked {git}/HEAD and {git}/config (5 times) but never fsynced the directory {git}" \
        in finding["message"]


def test_removals_of_two_files_in_one_directory_name_both(trace, program, tmp_path):
    """"app.db-shm (2 removals)" hid the -wal."""
    t = trace([str(program), "unlinks"])
    assert t.returncode == 0, t.stderr
    [finding] = [f for f in t.report["findings"] if f["rule"] == "FS104"]
    db = tmp_path / "db"
    assert f"removed {db}/app.db-wal and {db}/app.db-shm (2 removals)" in finding["message"]


# Every output of the traced run, replayed from its log


@pytest.fixture
def sites(trace, program, tmp_path):
    t = trace([str(program), "sites"], "--stacks")
    assert t.returncode == 0, t.stderr
    return t


def replayed(t, *options: str) -> str:
    proc = fsaudit("report", str(t.events_path), "--fail-on", "never", *options, cwd=t.events_path.parent)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_concise_is_one_line_per_group(sites, tmp_path):
    fs101, fs102 = sites.report["groups"]
    assert replayed(sites, "--format", "concise").splitlines() == [
        f"FS101 error rename-unsynced-data: {fs101['message']} (alpha/a.tmp, beta/b.tmp)",
        f"FS102 warning rename-unsynced-dir: {fs102['message']} (alpha, beta)",
        "fsaudit: 2 error, 2 warning in 2 groups"]


def test_statistics_count_per_rule_and_group(sites):
    assert replayed(sites, "--statistics").splitlines() == [
        "findings by rule:",
        "  2  FS101  error    rename-unsynced-data",
        "  2  FS102  warning  rename-unsynced-dir",
        "findings by group:",
        f"  2  g1  FS101  2 files  at {CALL_SITE}",
        f"  2  g2  FS102  2 files  at {CALL_SITE}",
        "fsaudit: 2 error, 2 warning in 2 groups"]
    document = json.loads(replayed(sites, "--statistics", "--format", "json"))
    assert document["rules"] == [{"rule": "FS101", "name": "rename-unsynced-data", "severity": "error", "count": 2},
                                 {"rule": "FS102", "name": "rename-unsynced-dir", "severity": "warning", "count": 2}]
    assert [(g["id"], g["count"], g["files"], g["call_site"]) for g in document["groups"]] == [
        ("g1", 2, 2, CALL_SITE), ("g2", 2, 2, CALL_SITE)]


def test_sarif_has_one_result_per_group_at_its_call_site(sites, tmp_path):
    replayed(sites, "--sarif", "r.sarif")
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    jsonschema.Draft4Validator(json.loads((ROOT / "tests/schemas/sarif-schema-2.1.0.json").read_text())).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert [(r["ruleId"], r["properties"]["group"]) for r in results] == [("FS101", "g1"), ("FS102", "g2")]
    fs101 = results[0]
    assert fs101["locations"] == [{"physicalLocation": {"artifactLocation": {"uri": SOURCE.as_uri()},
                                                        "region": {"startLine": RENAME_LINE}},
                                   "message": {"text": CALL_SITE}}]
    # the files, under the source root (the replay's directory: no repository holds it), relative to it
    assert [r["physicalLocation"]["artifactLocation"] for r in fs101["relatedLocations"]] == [
        {"uri": "alpha/a.tmp", "uriBaseId": "%SRCROOT%"}, {"uri": "beta/b.tmp", "uriBaseId": "%SRCROOT%"}]
    assert fs101["partialFingerprints"] == {"fsauditCause/v1": f"FS101:{CALL_SITE}"}
    assert len(fs101["properties"]["findings"]) == 2


def test_junit_has_one_testcase_per_group(sites, tmp_path):
    proc = fsaudit("report", str(sites.events_path), "--junit", "r.xml", cwd=tmp_path)
    assert proc.returncode == 1
    cases = [(c.get("classname"), c.get("name"), c.find("failure") is not None)
             for c in ET.parse(tmp_path / "r.xml").iter("testcase") if c.get("name") != "all files"]
    assert cases == [("FS101 rename-unsynced-data", f"2 files at {CALL_SITE}", True),
                     ("FS102 rename-unsynced-dir", f"2 files at {CALL_SITE}", False)]


# The grouping itself, and the exact summaries, on hand-written streams


@pytest.mark.parametrize("path, cwd, pattern", [
    # the parent directory, its runs of digits and of hex generalised
    ("/srv/data/seg001/x", None, "/srv/data/seg*"),
    ("/var/lib/postgresql/base/16384/2619", None, "/var/lib/postgresql/base/*"),
    ("/repo/.git/objects/3f/9a1c0e", None, "/repo/.git/objects/*"),
    ("/cache/0f3e9a2b7c4d1e5f/blob", None, "/cache/*"),
    ("/cache/abcdefabcdef/blob", None, "/cache/*"),                 # 12 hex letters: a hash
    ("/srv/cafe/added/x", None, "/srv/cafe/added"),                 # words of hex letters are names
    ("/v/lib/python3.11/site-packages/pip/x.py", None, "/v/lib/python*.*/site-packages/pip"),
    ("/tmp/tmpab3d5f7h/s", None, "/tmp/tmp*"),
    ("/tmp/pytest-of-root/pytest-12/test_x0/f", None, "/tmp/pytest-of-root/pytest-*/test_x*"),
    ("/x", None, "/"),
    # but for the cwd and the directories above it, whose names stay (the summary prints them relative)
    ("/tmp/python-venv-pgkge4kw/v/lib/python3.11/x.py", "/tmp/python-venv-pgkge4kw",
     "/tmp/python-venv-pgkge4kw/v/lib/python*.*"),
    ("/tmp/run7/f", "/tmp/run7", "/tmp/run7"),
    ("/tmp/pytest-of-root/pytest-13/other0/f", "/tmp/pytest-of-root/pytest-12/test_x0",
     "/tmp/pytest-of-root/pytest-*/other*"),
    ("/srv/app2/seg1/x", "/srv/app", "/srv/app*/seg*"),            # a name, not a prefix of one
    ("/srv/seg1/x", "/", "/srv/seg*"),
])
def test_path_pattern_generalises_the_parent_below_the_cwd(path, cwd, pattern):
    assert path_pattern(path, cwd) == pattern


@pytest.mark.parametrize("paths, patterns", [
    # git's object directories: a hash of two hex letters is one with its siblings of digits
    (["/r/.git/objects/18/a", "/r/.git/objects/cc/b", "/r/.git/objects/ce/c"], ["/r/.git/objects/*"] * 3),
    # a word of hex letters beside a run of another length, or alone, is a name
    (["/var/db/a", "/var/2024/b", "/var/ab/c"], ["/var/db", "/var/*", "/var/ab"]),
    (["/srv/cc/a"], ["/srv/cc"]),
])
def test_a_name_of_hex_letters_is_a_run_where_its_siblings_are(paths, patterns):
    assert [path_patterns(paths)[path] for path in paths] == patterns


def test_the_cwd_keeps_its_name_of_hex_letters_beside_a_run():
    assert path_patterns(["/srv/cafe/x", "/srv/c0fe/y"], "/srv/cafe") == {"/srv/cafe/x": "/srv/cafe",
                                                                        "/srv/c0fe/y": "/srv/*"}


def test_a_stable_pattern_generalises_the_cwd_too():
    """What SARIF's fingerprints use: the same wherever fsaudit ran."""
    assert stable_pattern("/tmp/python-venv-pgkge4kw/v/tmpab3d5f7h") == "/tmp/python-venv-pgkge*kw/v/tmp*"
    assert stable_pattern("sub") == "sub"


def test_the_call_site_is_the_programs_own_frame():
    assert own_frame(["rename", "os.replace (/usr/lib/python3.11/os.py:12)", "save (/srv/app.py:7)",
                      "<module> (/srv/app.py:10)"]) == "save (/srv/app.py:7)"
    assert own_frame(["rename", "save_naive"]) is None       # no line tables: nothing to group by
    assert own_frame(None) is None


def _report(events: list[dict], cwd: str = D) -> dict:
    """The report of a run in cwd."""
    engine = Engine()
    for event in events:
        engine.feed(event)
    engine.finish(None, cwd)
    return build_report(engine, mode="report", target={"argv": [], "pid": None, "exit": None},
                        started_at="2026-01-01T00:00:00.000Z", duration_s=0.5, tool_version="0.1.0", cwd=cwd)


def _segments(stream: Stream, count: int, base: str = D, stack: list | None = None) -> None:
    """count files written and renamed without fsync, one per segment directory of base."""
    for n in range(count):
        tmp, path = f"{base}/seg{n:03d}/db.tmp", f"{base}/seg{n:03d}/db"
        fd = stream.open(tmp)
        stream.write(fd, tmp)
        stream.close(fd, tmp)
        stream.ev("rename", path=tmp, path2=path, **({"stack": stack} if stack else {}))
        stream.sync_dir(f"{base}/seg{n:03d}")


def test_many_files_of_one_cause_are_one_short_entry():
    s = Stream(argv=("app",))
    _segments(s, 40)
    other = Stream(pid=200, argv=("tool",))     # the same rule from another image: its own group
    other.t = s.t
    _segments(other, 2)
    report = _report(s.events + other.events)
    assert [(g["rule"], g["count"], g["exe"], g["pattern"]) for g in report["groups"]] == [
        ("FS101", 40, "/usr/bin/app", f"{D}/seg*"), ("FS101", 2, "/usr/bin/tool", f"{D}/seg*")]
    message = "a rename or link publishes a file whose written data was never fsynced"
    assert render_text(report, "error").splitlines() == [
        "fsaudit: 42 error in 2 groups",
        "",
        "ERROR: 42 findings in 2 groups",
        f"  FS101 rename-unsynced-data [40 findings, 40 files]: {message}: 40 files in seg* by app",
        "    seg000/db.tmp",
        "    seg001/db.tmp",
        "    seg002/db.tmp",
        "    and 37 more",
        f"  FS101 rename-unsynced-data [2 findings, 2 files]: {message}: 2 files in seg* by tool",
        "    seg000/db.tmp",
        "    seg001/db.tmp",
        f"    fix: {FIX_101}"]
    assert render_concise(report, "error").splitlines() == [
        f"FS101 error rename-unsynced-data: {message}: 40 files in seg* by app "
        "(seg000/db.tmp, seg001/db.tmp, seg002/db.tmp and 37 more)",
        f"FS101 error rename-unsynced-data: {message}: 2 files in seg* by tool (seg000/db.tmp, seg001/db.tmp)",
        "fsaudit: 42 error in 2 groups"]
    assert render_statistics(report, "error").splitlines()[-3:] == [
        "  40  g1  FS101  40 files  in seg* by app",
        "   2  g2  FS101  2 files   in seg* by tool",
        "fsaudit: 42 error in 2 groups"]
    # every finding stays in the JSON, with its group
    assert sorted(f["group"] for f in report["findings"]) == ["g1"] * 40 + ["g2"] * 2


def test_a_call_site_groups_across_directories_and_images():
    site = "save (/srv/app/save.py:3)"
    s = Stream(argv=("app",))
    _segments(s, 2, stack=["rename", "os.replace (/usr/lib/python3.11/os.py:1)", site])
    other = Stream(pid=200, argv=("tool",))
    other.t = s.t
    _segments(other, 1, base="/srv/other", stack=["rename", site])
    report = _report(s.events + other.events)
    [group] = report["groups"]
    assert (group["call_site"], group["pattern"], group["exe"], group["files"]) == (site, None, None, 3)
    sarif = render_sarif(report, "error")
    [result] = sarif["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}
    assert len(result["relatedLocations"]) == 3


def test_findings_without_a_path_group_by_image_and_count_processes():
    s = Stream(argv=("app",))
    s.ev("sync")
    s.ev("fork", ret=101, child=101)
    s.ev("sync", pid=101)
    s.exit(0)
    report = _report(s.events)
    [group] = report["groups"]
    assert (group["rule"], group["count"], group["files"], group["pattern"]) == ("FS304", 2, 0, None)
    assert group["message"].endswith(": 2 processes by app")
    assert render_text(report, "error").splitlines()[3].startswith("  FS304 whole-fs-sync [2 findings]: ")


# A wheel unpacked: many directories, one cause (issue #15: the venv's summary was 94 groups, 468 lines)

PACKAGE = [f"{D}/v/site/pip/{name}" for name in (
    "__init__.py", "_internal/cli/main.py", "_internal/commands/install.py", "_vendor/rich/text.py",
    "_vendor/rich/console.py", "_vendor/urllib3/util/retry.py", "_vendor/vendor.txt")]
SCRIPTS = [f"{D}/v/bin/{name}" for name in ("activate", "activate.csh", "activate.fish")]


def _unpacked() -> dict:
    """app unpacks a package (never fsynced) and replaces its RECORD (fsynced, its directory
    never); venv, another image, writes the activation scripts."""
    s = Stream(argv=("app",))
    for path in PACKAGE:
        fd = s.open(path)
        s.write(fd, path, 100)
        s.close(fd, path)
    s.save(f"{D}/v/site/pip-23.0.1.dist-info/RECORD", dir_sync=False)
    venv = Stream(pid=200, argv=("venv",))
    venv.t = s.t
    for path in SCRIPTS:
        fd = venv.open(path)
        venv.write(fd, path, 100)
        venv.close(fd, path)
    venv.exit(0)
    s.t = venv.t
    s.exit(0)
    return _report(s.events + venv.events)


PACKAGE_DIRS = ["v/site/pip", "v/site/pip/_internal/cli", "v/site/pip/_internal/commands", "v/site/pip/_vendor/rich",
                "v/site/pip/_vendor/urllib*/util", "v/site/pip/_vendor"]


def test_a_package_unpacked_into_many_directories_is_a_group_a_directory():
    report = _unpacked()
    fs105 = of_rule(report, "FS105")
    assert [(g["pattern"], g["exe"]) for g in fs105] == [
        (f"{D}/v/bin", "/usr/bin/venv"), *((f"{D}/{pattern}", "/usr/bin/app") for pattern in PACKAGE_DIRS)]
    assert sorted(path for g in fs105[1:] for path in g["paths"]) == sorted(PACKAGE)
    assert fs105[4]["message"].endswith(f": 2 files in {D}/v/site/pip/_vendor/rich by app")


def test_the_summary_leads_with_warnings_in_full_and_folds_info_to_a_line_a_rule():
    report = _unpacked()
    [fs102] = of_rule(report, "FS102")
    assert render_text(report, "error").splitlines() == [
        "fsaudit: 1 warning, 10 info in 8 groups",
        "",
        "WARNING: 1 finding in 1 group",
        f"  FS102 rename-unsynced-dir: {fs102['message'].replace(D + '/', '')}",
        "    fix: after the rename, open the directory (each directory, if it moved across) read-only and fsync "
        "that descriptor",
        "",
        "INFO: 10 findings in 7 groups, a line a rule (--format concise lists each group)",
        # a file of each group first
        "  FS105 unsynced-at-exit [10 findings, 10 files in 7 groups]: v/bin/activate, v/site/pip/__init__.py, "
        "v/site/pip/_internal/cli/main.py and 7 more"]
    # concise and --statistics list every group, as the JSON does
    concise = render_concise(report, "error").splitlines()
    assert [line.split(":")[0] for line in concise[:-1]] == [
        "FS102 warning rename-unsynced-dir", *["FS105 info unsynced-at-exit"] * 7]
    assert concise[1].startswith("FS105 info unsynced-at-exit: observation ended with written data that was never "
                                 "fsynced: 3 files in v/bin by venv (v/bin/activate, ")
    assert render_statistics(report, "error").splitlines()[-5:] == [
        "  1  g5  FS105  1 file   in v/site/pip/_internal/commands by app",
        "  2  g6  FS105  2 files  in v/site/pip/_vendor/rich by app",
        "  1  g7  FS105  1 file   in v/site/pip/_vendor/urllib*/util by app",
        "  1  g8  FS105  1 file   in v/site/pip/_vendor by app",
        "fsaudit: 1 warning, 10 info in 8 groups"]


def test_a_rule_with_one_info_finding_folds_to_its_message():
    s = Stream(argv=("app",))
    fd = s.open(f"{D}/app.log")
    s.write(fd, f"{D}/app.log", 10)
    s.exit(0)
    report = _report(s.events)
    [group] = report["groups"]
    assert render_text(report, "error").splitlines()[-1] == f"  FS105 unsynced-at-exit: {group['message'].replace(D + '/', '')}"


def test_a_cwd_with_digits_in_its_name_keeps_them_and_prints_relative():
    """issue #15: tests/real's venv ran in /tmp/python-venv-pgkge4kw, and the pattern
    /tmp/python-venv-pgkge*kw/... was no path under the cwd: printed whole, never relative."""
    cwd = "/tmp/python-venv-pgkge4kw"
    s = Stream(argv=("app",))
    for path in (f"{cwd}/v/lib/python3.11/a.py", f"{cwd}/v/lib/python3.11/b.py"):
        fd = s.open(path)
        s.write(fd, path, 10)
        s.close(fd, path)
    s.exit(0)
    report = _report(s.events, cwd)
    [group] = report["groups"]
    assert group["pattern"] == f"{cwd}/v/lib/python*.*"
    assert render_concise(report, "error").splitlines()[0].endswith(
        ": 2 files in v/lib/python*.* by app (v/lib/python3.11/a.py, v/lib/python3.11/b.py)")
    assert "  2  g1  FS105  2 files  in v/lib/python*.* by app" in render_statistics(report, "error")


def test_junit_names_its_cases_with_paths_under_the_cwd_relative():
    s = Stream(argv=("app",))
    for path in (f"{D}/seg1/x", f"{D}/seg2/y", f"{D}/logs/app.log"):
        fd = s.open(path)
        s.write(fd, path, 10)
        s.close(fd, path)
    s.exit(0)
    cases = ET.fromstring(render_junit(_report(s.events), "error")).iter("testcase")
    assert [case.get("name") for case in cases if case.get("classname").startswith("FS105")] == [
        "logs/app.log", "2 files in seg*"]


def test_the_summary_names_the_cwd_itself_dot_as_it_names_the_paths_under_it():
    """issue #15: FS102's message named the cwd absolute ("the directory /tmp/sample")
    beside the relative names of its files and of other directories ("the directory sub")."""
    s = Stream(argv=("app",))
    s.save(f"{D}/a", dir_sync=False)
    s.save(f"{D}/sub/b", dir_sync=False)
    s.exit(0)
    report = _report(s.events)
    text = render_text(report, "error")
    assert "renamed or linked a but never fsynced the directory . afterwards" in text, text
    assert "renamed or linked sub/b but never fsynced the directory sub afterwards" in text, text
    assert D not in text and D in report["findings"][0]["message"]     # the JSON keeps absolute paths


def test_junit_names_the_cwd_itself_dot():
    """issue #15: FS102 on renames in the cwd was the case "/tmp/sample"; and the FS105 of
    two files in it was "2 files in /tmp/sample"."""
    s = Stream(argv=("app",))
    for name in ("a", "b"):
        s.save(f"{D}/{name}", fsync=True, dir_sync=False)
        fd = s.open(f"{D}/{name}.log", "O_WRONLY", "O_APPEND")
        s.write(fd, f"{D}/{name}.log", 10)
    s.exit(0)
    cases = {case.get("classname")[:5]: case.get("name")
             for case in ET.fromstring(render_junit(_report(s.events), "error")).iter("testcase")}
    assert (cases["FS102"], cases["FS105"]) == (".", "2 files in .")


@pytest.mark.parametrize("render", [render_text, render_concise, render_statistics])
def test_the_preamble_prints_paths_under_the_cwd_relative_too(render):
    s = Stream(argv=("app",))
    s.save(f"{D}/db", fsync=False)
    s.exit(0)
    report = _report(s.events)
    report["config"]["path"] = f"{D}/fsaudit.toml"
    report["warnings"] = [f"--path '{D}/logs/*' matched nothing in this run"]
    assert render(report, "error").splitlines()[:2] == ["warning: --path 'logs/*' matched nothing in this run",
                                                        "config: fsaudit.toml"]


def test_two_images_of_one_name_are_named_by_their_paths():
    """venv's python3 is /usr/bin/python3, the pip it runs is the venv's bin/python3: two
    groups "by python3" read as one cause split in two."""
    system, venv = Stream(argv=("python3",)), Stream(pid=200, argv=("python3",))
    venv.events[0]["path"] = f"{D}/v/bin/python3"
    venv.t = system.t
    for stream, names in ((system, ("activate", "activate.csh")), (venv, ("pip", "pip3"))):
        for name in names:
            fd = stream.open(f"{D}/v/bin/{name}")
            stream.write(fd, f"{D}/v/bin/{name}", 10)
            stream.close(fd, f"{D}/v/bin/{name}")
        stream.exit(0)
    report = _report(system.events + venv.events)
    assert [g["message"].rsplit(": ", 1)[1] for g in report["groups"]] == [
        f"2 files in {D}/v/bin by /usr/bin/python3", f"2 files in {D}/v/bin by {D}/v/bin/python3"]
    assert render_statistics(report, "error").splitlines()[-3:-1] == [
        "  2  g1  FS105  2 files  in v/bin by /usr/bin/python3", "  2  g2  FS105  2 files  in v/bin by v/bin/python3"]


def _every_output(config: EngineConfig, events: list[dict]) -> dict[str, str]:
    """Each output of one analysis as its text (the JSON as written)."""
    engine = Engine(config)
    for event in events:
        engine.feed(event)
    engine.finish(None, D)
    report = build_report(engine, mode="report", target={"argv": [], "pid": None, "exit": None},
                          started_at="2026-01-01T00:00:00.000Z", duration_s=0.5, tool_version="0.1.0", cwd=D)
    written = StringIO()
    write_json(report, written)
    return {"json": written.getvalue(), "text": render_text(report, "error"),
            "concise": render_concise(report, "error"), "statistics": render_statistics(report, "error"),
            "sarif": json.dumps(render_sarif(report, "error")), "junit": render_junit(report, "error"),
            "github": render_github(report, "error"), "html": json.dumps(embedded(report, "error"), default=list),
            "live": repr([dataclasses.asdict(finding) for finding in engine.findings]),
            "counts": repr(engine.findings.counts()), "last": repr(engine.findings[-1])}


def test_findings_past_those_kept_in_memory_are_spilled_and_read_back_the_same(monkeypatch):
    s = Stream(argv=("app",))
    _segments(s, 30)
    _segments(s, 30)        # each finding counted twice
    _segments(s, 2, base="/srv/other", stack=["rename", "save (/srv/app/save.py:3)"])
    fd = s.open(D + "/app.log", "O_WRONLY", "O_CREAT", "O_TRUNC")
    s.write(fd, D + "/app.log", 100)
    s.rename(D + "/app.log", D + "/app.log.1")      # a log: FS101 and FS102 at info, their messages say why
    other = Stream(pid=200, argv=("tool",))
    other.t = s.t
    _segments(other, 3)
    config = EngineConfig(suppressions=[Suppression("FS101", D + "/seg01*/**", "segments 10-19 are scratch")])
    events = s.events + other.events
    whole = _every_output(config, events)
    spilled = []

    class Counted(findings_module.Spill):
        def append(self, record: tuple) -> None:
            spilled.append(record[0])
            super().append(record)

    monkeypatch.setattr(findings_module, "IN_MEMORY", 5)
    monkeypatch.setattr(findings_module, "Spill", Counted)
    assert _every_output(config, events) == whole
    assert len(spilled) > 25 and "FS101" in spilled
    report = json.loads(whole["json"])
    assert report["config"]["suppressed"][0]["hidden"] == 10 and report["suppressed_groups"]
    assert {f["count"] for f in report["findings"] if f["path"].startswith(D + "/seg")} >= {1, 2}
    assert any(f["message"].endswith("(info, not error: a log file, not data)") for f in report["findings"])


def test_a_full_spill_keeps_the_findings_in_memory(monkeypatch):
    s = Stream(argv=("app",))
    _segments(s, 8)
    whole = _every_output(EngineConfig(), s.events)

    class Full(findings_module.Spill):
        def append(self, record: tuple) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(findings_module, "IN_MEMORY", 2)
    monkeypatch.setattr(findings_module, "Spill", Full)
    assert _every_output(EngineConfig(), s.events) == whole


def test_a_traced_run_past_those_kept_in_memory_reports_as_its_replay(trace, tmp_path):
    """bench/manyfindings.c writes and renames 1,200 files with no fsync: more findings
    than IN_MEMORY, so the live run spills; its JSON must equal the replay of its log."""
    exe = tmp_path / "manyfindings"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench" / "manyfindings.c")], check=True)
    files = findings_module.IN_MEMORY + 200
    traced = trace([str(exe), str(files)])
    assert traced.returncode == 0, traced.stderr
    live = traced.report["findings"]
    assert len(live) > findings_module.IN_MEMORY
    assert {f["target_path"] for f in live if f["rule"] == "FS101"} == {str(tmp_path / "files" / str(i)) for i in range(files)}
    replayed = tmp_path / "replayed.json"
    proc = fsaudit("report", str(traced.events_path), "--fail-on", "never", "--json", str(replayed))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(replayed.read_text())["findings"] == live
