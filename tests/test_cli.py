"""Bad command lines: one line on stderr and exit status 2, never a traceback."""

import json
import os
from pathlib import Path

import pytest

from conftest import fsaudit


@pytest.mark.parametrize("args, says", [
    (["run", "--bogus", "--", "true"], "No such option: --bogus"),
    (["report"], "Missing argument"),
    (["attach", "abc"], "Invalid value for 'PID'"),
    (["run", "--fail-on", "sometimes", "--", "true"],
     "Invalid value for '--fail-on': 'sometimes' is not one of 'error', 'warning', 'info', 'never'."),
    (["report", "--format", "xml", "log"], "Invalid value for '--format': 'xml' is not one of"),
    (["report", "/nonexistent/events.jsonl"], "/nonexistent/events.jsonl"),
    (["rules", "FS999"], "unknown rule 'FS999'"),
    *((["attach", "--duration", bad, "1"], f"--duration must be a positive number of seconds, not {bad}")
      for bad in ("nan", "inf", "-1", "0")),
])
def test_bad_usage_is_one_line_and_exit_2(args, says):
    result = fsaudit(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert says in result.stderr


def test_bare_fsaudit_is_the_usage_on_stderr_and_exit_2():
    result = fsaudit()
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Usage:" in result.stderr and "doctor" in result.stderr
    assert not any(line.startswith("fsaudit:") for line in result.stderr.splitlines())    # no empty message
    assert "Traceback" not in result.stderr


def test_a_rule_is_found_by_name_and_printed_as_its_page_off_a_terminal():
    by_name, by_code = fsaudit("rules", "rename-unsynced-data"), fsaudit("rules", "fs101")
    page = (Path(__file__).resolve().parent.parent / "fsaudit/analysis/rules/pages/FS101.md").read_text()
    assert by_name.returncode == by_code.returncode == 0
    assert by_name.stdout == by_code.stdout and by_name.stdout.startswith(page)
    assert "\x1b[" not in by_name.stdout and "## Fix by runtime" in by_name.stdout


def test_version():
    result = fsaudit("--version")
    assert result.returncode == 0 and result.stdout.startswith("fsaudit ") and "(fsaudit-ebpf)" in result.stdout


@pytest.fixture
def empty_log(tmp_path):
    """An event log of a run that did nothing."""
    log = tmp_path / "empty.jsonl"
    log.write_text('{"schema": "fsaudit.events/1", "mode": "run", "argv": ["true"]}\n'
                   '{"trailer": "fsaudit.events/1", "events": 0}\n')
    return log


@pytest.mark.parametrize("option, says", [
    (["--path", "!"], "--path '!': an empty glob matches nothing"),
    (["--exclude", "/a/["], "--exclude '/a/[': not a glob that can match a path"),
])
def test_a_bad_glob_option_is_one_line_and_exit_2(empty_log, option, says):
    result = fsaudit("report", str(empty_log), *option)
    assert result.returncode == 2
    assert result.stderr == f"fsaudit: configuration: {says}\n"


def test_a_path_option_that_matched_nothing_is_a_warning_on_stderr_and_in_the_report(empty_log, tmp_path):
    result = fsaudit("report", str(empty_log), "--path", "data/**", "--json", "r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warning = f"--path 'data/**' matched nothing in this run (relative to {tmp_path})"
    assert result.stderr == f"fsaudit: warning: {warning}\n"
    assert json.loads((tmp_path / "r.json").read_text())["warnings"] == [warning]


def test_help_lists_the_choices_and_keeps_the_config_table_name():
    result = fsaudit("run", "--help", env={**os.environ, "COLUMNS": "200"})
    assert "<text|concise|json|github>" in result.stdout and "<error|warning|info|never>" in result.stdout
    assert "pyproject.toml with [tool.fsaudit]" in result.stdout
