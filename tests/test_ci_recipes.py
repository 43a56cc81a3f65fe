"""The CI recipes of docs/ci.md (docs/ci/github-workflow.yml, docs/ci/gitlab-ci.yml) are
valid YAML that says what the docs say, and their steps that can run on this machine do:
here, in a git checkout of a small program that saves a file naively, with the
workflow's own commands (a `sudo` that only runs its command stands in for the runner's,
as the tests run as root). Installing bcc and fsaudit needs the network: not run here
(tests/test_install.py installs the wheel as the recipes' pipx does)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT

GITHUB = ROOT / "docs" / "ci" / "github-workflow.yml"
GITLAB = ROOT / "docs" / "ci" / "gitlab-ci.yml"
SARIF_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "sarif-schema-2.1.0.json").read_text())
# The steps of the GitHub workflow, by name: those run here, and those that need the network.
RUN_HERE = ("Check that the runner can trace", "Trace the program", "Give the SARIF file to the runner's user")
NEEDS_NETWORK = ("Install bcc and the kernel's headers", "Install fsaudit")
APP = """\
import os


def save(path, data):
    with open(path + ".tmp", "w") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


save("state.json", "{}")
"""
REPLACE_LINE = 7
PROGRAM = "/usr/bin/python3.11 app.py"     # CPython 3.11: --stacks names the Python line


def _workflow() -> dict:
    return yaml.safe_load(GITHUB.read_text())


def _github_job() -> dict:
    [job] = _workflow()["jobs"].values()
    return job


def _step(name: str) -> dict:
    return next(step for step in _github_job()["steps"] if step.get("name") == name)


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A git checkout of the program, and a `sudo` that runs its command (we are root)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.py").write_text(APP)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (shims / "sudo").chmod(0o755)
    return repo


def _shell(script: str, checkout: Path, env: dict) -> subprocess.CompletedProcess:
    """A step's script as the runner runs it (bash -eo pipefail), fsaudit from this checkout's venv."""
    path = f"{checkout.parent / 'bin'}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=checkout,
                          env={**os.environ, **env, "PATH": path}, capture_output=True, text=True)


def test_the_github_workflow_is_valid_yaml_and_uploads_what_fsaudit_writes():
    workflow = _workflow()
    assert set(workflow[True]) == {"push", "pull_request"}      # `on`, which YAML 1.1 reads as true
    job = _github_job()
    assert job["permissions"]["security-events"] == "write"
    names = [step.get("name") for step in job["steps"] if "run" in step]
    assert sorted(names) == sorted(RUN_HERE + NEEDS_NETWORK)    # a new step: decide whether it runs here
    trace = _step("Trace the program")
    assert trace["id"] == "trace"
    command = shlex.split(trace["run"])
    assert command[:4] == ["sudo", "env", "PATH=$PATH", "fsaudit"] and command[4] == "run"
    assert command[command.index("--format") + 1] == "github"
    sarif = command[command.index("--sarif") + 1]
    upload = next(step for step in job["steps"] if step.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == sarif and sarif in _step("Give the SARIF file to the runner's user")["run"]
    # the upload runs when the trace step failed the job on a finding
    assert upload["if"] == _step("Give the SARIF file to the runner's user")["if"]
    assert "!cancelled()" in upload["if"] and "steps.trace.outcome != 'skipped'" in upload["if"]
    install = _step("Install fsaudit")["run"]
    assert "pipx install --system-site-packages --python /usr/bin/python3" in install
    assert "python3-bpfcc" in _step("Install bcc and the kernel's headers")["run"]


def test_the_github_workflow_steps_trace_annotate_and_hand_over_the_sarif(bpf, checkout):
    env = {**_github_job()["env"], "PROGRAM": PROGRAM}
    results = {name: _shell(_step(name)["run"], checkout, env) for name in RUN_HERE}
    assert results["Check that the runner can trace"].returncode == 0, results["Check that the runner can trace"].stdout
    traced = results["Trace the program"]
    assert traced.returncode == 1, traced.stderr        # an error: the job fails, after the upload
    assert re.search(rf"^::error file=app\.py,line={REPLACE_LINE},title=FS101 rename-unsynced-data::.*state\.json",
                     traced.stderr, re.MULTILINE), traced.stderr
    assert results["Give the SARIF file to the runner's user"].returncode == 0
    sarif = json.loads((checkout / "fsaudit.sarif").read_text())
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    fs101 = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "FS101")
    assert fs101["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "app.py", "uriBaseId": "%SRCROOT%"},
                                                         "region": {"startLine": REPLACE_LINE}}


def test_the_gitlab_job_is_valid_yaml_and_its_script_writes_the_junit_report(bpf, checkout):
    [job] = yaml.safe_load(GITLAB.read_text()).values()
    assert job["artifacts"]["when"] == "always"
    junit = job["artifacts"]["reports"]["junit"]
    [script] = job["script"]
    assert f"--junit {junit}" in script
    env = {**job["variables"], "PROGRAM": PROGRAM}
    traced = _shell(script, checkout, env)
    assert traced.returncode == 1, traced.stderr
    assert _shell("\n".join(job["after_script"]), checkout, env).returncode == 0
    assert job["artifacts"]["paths"] == ["fsaudit.sarif"] and (checkout / "fsaudit.sarif").is_file()
    report = (checkout / junit).read_text()
    assert '<failure type="error"' in report and "state.json.tmp" in report
