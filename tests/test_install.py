"""fsaudit installed as a user would, without a checkout: the wheel and the sdist
built from the tracked files, the wheel installed with the README's own commands
(pipx, Debian's, or pip into a fresh venv of the system Python, both with
--system-site-packages, where Debian's python3-bpfcc lives), then run from
another directory. docs/ci.md and its recipes install with the same pipx command."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import yaml

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
PIPX = "/usr/bin/pipx"
WHEEL_GLOB = "./fsaudit_ebpf-*.whl"     # what the README's commands name, run where the wheel is
NAIVE_SAVE = """
import os
with open("data.tmp", "w") as f:
    f.write("saved")
os.replace("data.tmp", "data")
"""


def _tracked_files(root: Path) -> list[str]:
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name and (root / name).is_file()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel, built from a copy of the tracked files (a build in the
    checkout would leave build/ and *.egg-info in it)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in _tracked_files(ROOT):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tree / name)
    out = tree / "dist"
    subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                    "build_meta.build_sdist(sys.argv[1])", str(out)], cwd=tree, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), "."],
                   cwd=tree, check=True, capture_output=True)
    return out


def _package_files(names: list[str]) -> set[str]:
    """The sdist's names without its top directory (fsaudit-ebpf-VERSION/)."""
    return {name.split("/", 1)[1] for name in names if "/" in name}


def test_the_wheel_and_sdist_carry_probes_rule_pages_templates_and_the_pytest_plugin_but_no_tests(dist):
    [wheel] = dist.glob("fsaudit_ebpf-*.whl")
    [sdist] = dist.glob("fsaudit-ebpf-*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
        [listed] = [name for name in in_wheel if name.endswith(".dist-info/entry_points.txt")]
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(listed).decode())
    with tarfile.open(sdist) as archive:
        in_sdist = _package_files(archive.getnames())
    pages = {f"fsaudit/analysis/rules/pages/{path.name}"
             for path in (ROOT / "fsaudit/analysis/rules/pages").glob("FS*.md")}
    probes = {f"fsaudit/tracing/probes/{name}" for name in ("fsaudit.c", "fsaudit.h", "cpython.h")}
    plugin = {"pytest_fsaudit/__init__.py", "pytest_fsaudit/plugin.py"}
    templates = {f"fsaudit/outputs/templates/{path.name}" for path in (ROOT / "fsaudit/outputs/templates").iterdir()}
    for contents in (in_wheel, in_sdist):
        assert pages and pages <= contents
        assert probes <= contents
        assert plugin <= contents
        assert {"fsaudit/outputs/templates/report.html", "fsaudit/outputs/templates/report.js"} <= templates <= contents
        assert not any(name.startswith(("tests/", "bench/", "examples/")) for name in contents)
    assert dict(entry_points["console_scripts"]) == {"fsaudit": "fsaudit.cli:main"}
    assert dict(entry_points["pytest11"]) == {"fsaudit": "pytest_fsaudit.plugin"}    # pytest loads it by this


def readme_install_commands() -> list[str]:
    """The command lines of the README's install blocks (the ```sh blocks after
    "Without a checkout"), comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("Without a checkout"):text.index("## Use")]
    lines = [line.split("   #", 1)[0].strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)
             for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def readme_command(starting: str) -> str:
    [line] = [line for line in readme_install_commands() if line.startswith(starting)]
    return line


def shell(line: str, cwd: Path, env: dict, shims: Path) -> subprocess.CompletedProcess:
    """One README line as a user's shell runs it; `sudo` runs its command as it is (we are root)."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", line], cwd=cwd,
                          env={**os.environ, **env, "PATH": f"{shims}:{env.get('PATH', os.environ['PATH'])}"},
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def shims(tmp_path_factory) -> Path:
    """A `sudo` that runs its command: the tests are root already."""
    bin_dir = tmp_path_factory.mktemp("shims")
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    return bin_dir


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory, shims) -> Path:
    """bin/ of a fresh venv of the system Python holding only the wheel and its
    dependencies, made by the README's venv line (its ~/fsaudit put in a temporary directory)."""
    if not Path(SYSTEM_PYTHON).exists():
        pytest.fail(f"{SYSTEM_PYTHON} missing: the install test uses the system Python, as pipx would")
    venv = tmp_path_factory.mktemp("home") / "fsaudit"
    line = readme_command(f"{SYSTEM_PYTHON} -m venv")
    assert line == (f"{SYSTEM_PYTHON} -m venv --system-site-packages ~/fsaudit && "
                    f"~/fsaudit/bin/pip install {WHEEL_GLOB}")
    made = shell(line.replace("~/fsaudit", str(venv)), dist, {}, shims)
    assert made.returncode == 0, made.stderr
    return venv / "bin"


@pytest.fixture(scope="module")
def pipx_installed(dist, tmp_path_factory, shims) -> Path:
    """The directory where the README's pipx line, run with Debian's pipx and
    PIPX_HOME and PIPX_BIN_DIR in a temporary directory, put the fsaudit command."""
    if shutil.which("pipx") != PIPX:
        pytest.fail(f"pipx is not {PIPX}: `make test-tools` installs Debian's")
    owner = subprocess.run(["dpkg-query", "-S", PIPX], capture_output=True, text=True)
    assert owner.stdout.startswith("pipx: "), f"{PIPX} is not Debian's pipx package: {owner.stdout}{owner.stderr}"
    home = tmp_path_factory.mktemp("pipx")
    bin_dir = home / "bin"
    made = shell(readme_command("pipx install"), dist,
                 {"PIPX_HOME": str(home / "home"), "PIPX_BIN_DIR": str(bin_dir)}, shims)
    assert made.returncode == 0, made.stdout + made.stderr
    return bin_dir


def test_the_readme_and_the_ci_recipes_install_with_one_pipx_command():
    """What docs/ci.md and its recipes run is the README's line, with the distribution
    (or $FSAUDIT: the distribution or a wheel) in place of the local wheel."""
    readme = readme_command("pipx install")
    assert readme == f"pipx install --system-site-packages --python {SYSTEM_PYTHON} {WHEEL_GLOB}"
    assert readme_command("sudo apt-get install").split()[-1] == "pipx"
    doctor = readme_command("sudo env")
    assert doctor == 'sudo env "PATH=$PATH" fsaudit doctor'
    ci_doc = (ROOT / "docs" / "ci.md").read_text()
    assert f"`{readme.replace(WHEEL_GLOB, 'fsaudit-ebpf')}`" in ci_doc
    assert f"`{doctor}`" in ci_doc
    workflow = yaml.safe_load((ROOT / "docs" / "ci" / "github-workflow.yml").read_text())
    [job] = workflow["jobs"].values()
    steps = {step.get("name"): step for step in job["steps"]}
    gitlab = yaml.safe_load((ROOT / "docs" / "ci" / "gitlab-ci.yml").read_text())["fsaudit"]
    for commands in (steps["Install fsaudit"]["run"].splitlines(), gitlab["before_script"]):
        assert readme.replace(WHEEL_GLOB, '"$FSAUDIT"') in commands
    assert doctor in steps["Check that the runner can trace"]["run"].splitlines()


def test_the_pipx_installed_command_prints_its_version_passes_doctor_and_traces_from_another_directory(
        bpf, pipx_installed, shims, tmp_path):
    env = {"PATH": f"{pipx_installed}:{os.environ['PATH']}"}
    fsaudit = pipx_installed / "fsaudit"
    assert "/venvs/fsaudit-ebpf/" in str(fsaudit.resolve())     # pipx's venv, not this checkout's
    version = shell("fsaudit --version", tmp_path, env, shims)
    assert version.returncode == 0 and version.stdout.startswith("fsaudit ") and "fsaudit-ebpf" in version.stdout
    doctor = shell(readme_command("sudo env"), tmp_path, env, shims)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    (tmp_path / "save.py").write_text(NAIVE_SAVE)
    run = shell(f"fsaudit run --no-live --fail-on never --json report.json -- {SYSTEM_PYTHON} save.py",
                tmp_path, env, shims)
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(f["path"], f["target_path"]) for f in report["findings"] if f["rule"] == "FS101"] == [
        (str(tmp_path / "data.tmp"), str(tmp_path / "data"))]


def test_the_installed_command_prints_its_version_and_full_rule_pages(installed, tmp_path):
    version = subprocess.run([str(installed / "fsaudit"), "--version"], cwd=tmp_path,
                             capture_output=True, text=True, check=True)
    assert version.stdout.startswith("fsaudit ") and "fsaudit-ebpf" in version.stdout
    page = subprocess.run([str(installed / "fsaudit"), "rules", "FS101"], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert page.stdout.startswith((ROOT / "fsaudit/analysis/rules/pages/FS101.md").read_text())


def test_the_installed_command_passes_doctor_and_traces_from_another_directory(bpf, installed, shims, tmp_path):
    fsaudit = str(installed / "fsaudit")
    line = readme_command("sudo ~/fsaudit/bin/fsaudit")
    assert line == "sudo ~/fsaudit/bin/fsaudit doctor"
    doctor = shell(line.replace("~/fsaudit/bin", str(installed)), tmp_path, {}, shims)
    assert doctor.returncode == 0, doctor.stdout
    (tmp_path / "save.py").write_text(NAIVE_SAVE)
    run = subprocess.run([fsaudit, "run", "--no-live", "--fail-on", "never", "--json", "report.json",
                          "--html", "report.html", "--", SYSTEM_PYTHON, "save.py"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(f["path"], f["target_path"]) for f in report["findings"] if f["rule"] == "FS101"] == [
        (str(tmp_path / "data.tmp"), str(tmp_path / "data"))]
    # The page's template and script came from the installed package.
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "// fsaudit HTML report" in page and "{{" not in page
