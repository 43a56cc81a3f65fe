"""Which configuration applies, and saying so: a config file found in the
current directory that another user could have written is ignored with a
warning (one suppression turns a run with an error into "No findings");
--config applies what it names; the summary and the report name the file
applied and what each suppression hid. On a log recorded from a real run."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from conftest import fsaudit

NOBODY = pwd.getpwnam("nobody").pw_uid
REASON = "scratch files, rewritten on every start"
# Hides both FS101 findings of the recording (fs101/a.tmp and dirfd/sub/t.tmp), wherever
# the file that says so is (the recording is in a directory of its own).
SUPPRESS = f"""\
[[suppress]]
rule = "FS101"
path = "/**/*.tmp"
reason = "{REASON}"

[[suppress]]
rule = "FS102"
path = "/nowhere/*"
reason = "matches nothing"
"""


@pytest.fixture(scope="module")
def events(bpf, build, tmp_path_factory) -> Path:
    """The event log of rules.c fs101 dirfd: two FS101 errors."""
    directory = tmp_path_factory.mktemp("configured")
    for mode in ("fs101", "dirfd"):
        (directory / mode).mkdir()
    proc = fsaudit("run", "--fail-on", "never", "--events", "events.jsonl", "--",
                   str(build("rules", "-pthread")), "fs101", "dirfd", cwd=directory)
    assert proc.returncode == 0, proc.stderr
    return directory / "events.jsonl"


def replay(events: Path, cwd: Path, *options: str, env: dict | None = None):
    """`fsaudit report` in cwd: (process, report). SUDO_UID only as given."""
    out = cwd / "replayed.json"
    out.unlink(missing_ok=True)
    environment = {k: v for k, v in os.environ.items() if k != "SUDO_UID"} | (env or {})
    proc = fsaudit("report", str(events), "--fail-on", "never", "--json", str(out), *options, cwd=cwd,
                   env=environment)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def fs101(report: dict) -> list[str]:
    return [f["path"] for f in report["findings"] if f["rule"] == "FS101"]


def planted(directory: Path, name: str = "fsaudit.toml", text: str = SUPPRESS, owner: int = 0,
            mode: int = 0o644) -> Path:
    path = directory / name
    path.write_text(text)
    os.chown(path, owner, 0)
    os.chmod(path, mode)
    return path


def assert_ignored(events: Path, directory: Path, path: Path, why: str) -> None:
    proc, report = replay(events, directory)
    assert proc.returncode == 0, proc.stderr
    assert len(fs101(report)) == 2                    # the suppression was not applied
    assert report["config"] == {"path": None, "suppressed": []}
    warning = f"{path} not applied: {why}"
    assert [w for w in report["warnings"] if w.startswith(warning)] == report["warnings"] != []
    assert f"fsaudit: warning: {warning}" in proc.stderr
    assert f"warning: {warning}" in proc.stdout       # the summary


def test_a_config_planted_by_another_user_is_ignored_with_a_warning(events, tmp_path):
    os.chmod(tmp_path, 0o1777)                        # a shared directory, like /tmp
    path = planted(tmp_path, owner=NOBODY)
    assert_ignored(events, tmp_path, path, f"owned by nobody (uid {NOBODY}), not by root or the user running fsaudit")


@pytest.mark.parametrize("mode, name", [(0o664, "fsaudit.toml"), (0o646, "fsaudit.toml"), (0o666, "pyproject.toml")])
def test_a_config_writable_by_group_or_others_is_ignored_with_a_warning(events, tmp_path, mode, name):
    text = SUPPRESS.replace("[[suppress]]", "[[tool.fsaudit.suppress]]") if name == "pyproject.toml" else SUPPRESS
    path = planted(tmp_path, name, text, mode=mode)
    assert_ignored(events, tmp_path, path, f"writable by group or others (mode {mode:04o})")


def test_a_planted_pyproject_without_fsaudit_settings_is_not_worth_a_warning(events, tmp_path):
    planted(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n", owner=NOBODY)
    proc, report = replay(events, tmp_path)
    assert proc.returncode == 0 and proc.stderr == "" and report["warnings"] == []


def test_an_ignored_file_leaves_the_next_one_to_apply(events, tmp_path):
    planted(tmp_path, "fsaudit.toml", 'disable = ["FS101"]\n', owner=NOBODY)
    pyproject = planted(tmp_path, "pyproject.toml", SUPPRESS.replace("[[suppress]]", "[[tool.fsaudit.suppress]]"))
    proc, report = replay(events, tmp_path)
    assert report["config"]["path"] == str(pyproject) and fs101(report) == []
    assert len(report["warnings"]) == 1 and "fsaudit.toml not applied" in report["warnings"][0]


def test_config_given_with_option_is_applied_whoever_owns_it(events, tmp_path):
    path = planted(tmp_path, "shared.toml", owner=NOBODY, mode=0o666)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc, report = replay(events, elsewhere, "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert fs101(report) == [] and report["warnings"] == []
    assert report["config"] == {"path": str(path), "suppressed": [
        {"rule": "FS101", "path": "/**/*.tmp", "reason": REASON, "hidden": 2},
        {"rule": "FS102", "path": "/nowhere/*", "reason": "matches nothing", "hidden": 0}]}


def test_the_summary_and_the_report_name_the_config_applied(events, tmp_path):
    path = planted(tmp_path)
    proc, report = replay(events, tmp_path)
    assert report["config"]["path"] == str(path)
    assert [s["hidden"] for s in report["config"]["suppressed"]] == [2, 0]
    lines = proc.stdout.splitlines()
    assert f"config: {path}" in lines
    assert f"  suppressed FS101 on /**/*.tmp: 2 findings hidden ({REASON})" in lines
    assert "  suppressed FS102 on /nowhere/*: 0 findings hidden (matches nothing)" in lines
    # without a config file, the report says none applied, and the summary says nothing of it
    path.unlink()
    proc, report = replay(events, tmp_path)
    assert report["config"] == {"path": None, "suppressed": []} and len(fs101(report)) == 2
    assert "config:" not in proc.stdout


def test_the_sudo_user_s_own_config_is_applied(events, tmp_path):
    """`sudo fsaudit run` in one's own checkout: the file of the user who ran sudo is trusted."""
    path = planted(tmp_path, owner=NOBODY)
    proc, report = replay(events, tmp_path, env={"SUDO_UID": str(NOBODY)})
    assert report["config"]["path"] == str(path) and fs101(report) == [] and report["warnings"] == []


@pytest.mark.parametrize("text, says", [
    ("tool = 5\n", "pyproject.toml: tool must be a table"),
    ("[tool]\nfsaudit = 5\n", "pyproject.toml: tool.fsaudit must be a table"),
])
def test_a_pyproject_whose_tool_is_not_a_table_is_exit_2(events, tmp_path, text, says):
    planted(tmp_path, "pyproject.toml", text)
    proc, report = replay(events, tmp_path)
    assert proc.returncode == 2 and report is None
    assert proc.stderr == f"fsaudit: configuration: {says}\n"
