"""fsaudit installed as a user would, without a checkout: the wheel and the sdist
built from the tracked files, the wheel pip-installed into a fresh venv of the
system Python with --system-site-packages (where Debian's python3-bpfcc lives),
then run from another directory."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
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


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> Path:
    """bin/ of a fresh venv of the system Python holding only the wheel and its dependencies."""
    if not Path(SYSTEM_PYTHON).exists():
        pytest.fail(f"{SYSTEM_PYTHON} missing: the install test uses the system Python, as pipx would")
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    [wheel] = dist.glob("fsaudit_ebpf-*.whl")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True)
    return venv / "bin"


def test_the_installed_command_prints_its_version_and_full_rule_pages(installed, tmp_path):
    version = subprocess.run([str(installed / "fsaudit"), "--version"], cwd=tmp_path,
                             capture_output=True, text=True, check=True)
    assert version.stdout.startswith("fsaudit ") and "fsaudit-ebpf" in version.stdout
    page = subprocess.run([str(installed / "fsaudit"), "rules", "FS101"], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert page.stdout.startswith((ROOT / "fsaudit/analysis/rules/pages/FS101.md").read_text())


def test_the_installed_command_passes_doctor_and_traces_from_another_directory(bpf, installed, tmp_path):
    fsaudit = str(installed / "fsaudit")
    doctor = subprocess.run([fsaudit, "doctor"], cwd=tmp_path, capture_output=True, text=True)
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
