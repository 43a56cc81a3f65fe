"""fsaudit crash end to end on the real tracer: the save examples of
examples/crash/ in Python and C, under both models (docs/crash.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FSAUDIT, ROOT

EXAMPLES = ROOT / "examples" / "crash"
sys.path.insert(0, str(EXAMPLES))
import check_save  # noqa: E402

CHECK = [sys.executable, str(EXAMPLES / "check_save.py")]


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    out = tmp_path_factory.mktemp("crash-bin")
    built = {}
    for name in ("naive_save", "durable_save"):
        subprocess.run(["cc", "-O2", "-o", str(out / name), str(EXAMPLES / f"{name}.c")], check=True)
        built[("c", name)] = [str(out / name)]
        built[("python", name)] = [sys.executable, str(EXAMPLES / f"{name}.py")]
    return built


def crash(scope: Path, workload: list[str], model: str, tmp_path: Path, *extra: str):
    report = tmp_path / "crash.json"
    proc = subprocess.run(FSAUDIT + ["crash", "--model", model, "--max-states", "80", "--json", str(report),
                                     "--keep", str(tmp_path / "kept"), *extra, "--", *workload, "--check", *CHECK],
                          cwd=scope, capture_output=True, text=True)
    return proc, (json.loads(report.read_text()) if report.exists() else None)


@pytest.mark.parametrize("language", ["python", "c"])
@pytest.mark.parametrize("model", ["posix", "ext4-ordered"])
def test_the_naive_save_loses_an_acknowledged_record(bpf, programs, tmp_path, language, model):
    scope = tmp_path / "scope"
    scope.mkdir()
    check_save.make_old_record(str(scope))
    proc, doc = crash(scope, programs[(language, "naive_save")], model, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert doc["schema"] == "fsaudit.crash/1" and doc["model"] == [model]
    assert doc["states"]["failed"] > 0 and doc["states"]["checked"] == doc["states"]["distinct"]
    outputs = " ".join(f["checker_output"] for f in doc["failures"])
    assert "acknowledged but record.txt is the old record" in outputs
    lost = {c["lost"] for f in doc["failures"] for c in f["minimal_cause"]}
    assert "rename" in lost
    assert all(f["rule"] for f in doc["failures"])            # FS101/FS102 fired live on those calls
    failure = doc["failures"][0]
    rerun = subprocess.run(failure["rerun"], shell=True, capture_output=True, text=True)
    assert rerun.returncode != 0 and rerun.stdout.strip() in failure["checker_output"]
    assert (scope / "record.txt").read_text() == check_save.NEW     # the checker's mounts stayed private


@pytest.mark.parametrize("language", ["python", "c"])
@pytest.mark.parametrize("model", ["posix", "ext4-ordered"])
def test_the_durable_save_passes(bpf, programs, tmp_path, language, model):
    scope = tmp_path / "scope"
    scope.mkdir()
    check_save.make_old_record(str(scope))
    proc, doc = crash(scope, programs[(language, "durable_save")], model, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["states"]["failed"] == 0 and doc["failures"] == [] and doc["states"]["checked"] > 5


def test_a_posix_only_loss_is_told_from_ext4s(bpf, programs, tmp_path):
    """Under posix the rename can outlive the data it renames (record.txt empty or torn);
    ext4-ordered's auto_da_alloc writes the data out first, so only the lost rename fails there."""
    outputs = {}
    for model in ("posix", "ext4-ordered"):
        scope = tmp_path / model
        scope.mkdir()
        check_save.make_old_record(str(scope))
        out = tmp_path / f"{model}-out"
        out.mkdir()
        _, doc = crash(scope, programs[("python", "naive_save")], model, out)
        outputs[model] = " ".join(f["checker_output"] for f in doc["failures"])
    assert "neither record" in outputs["posix"]
    assert "neither record" not in outputs["ext4-ordered"]


def test_a_workload_with_a_writable_shared_mapping_is_refused(bpf, tmp_path):
    scope = tmp_path / "scope"
    scope.mkdir()
    program = ("import mmap, os\nfd = os.open('m', os.O_RDWR | os.O_CREAT)\nos.ftruncate(fd, 4096)\n"
               "m = mmap.mmap(fd, 4096)\nm[:2] = b'hi'\n")
    proc, doc = crash(scope, [sys.executable, "-c", program], "posix", tmp_path)
    assert proc.returncode == 3 and doc is None
    assert proc.stderr.startswith("fsaudit: cannot record") and "MAP_SHARED" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_command_line_needs_a_checker(tmp_path):
    proc = subprocess.run(FSAUDIT + ["crash", "--", "true"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("fsaudit: no --check")
    proc = subprocess.run(FSAUDIT + ["crash", "--", "true", "--check", "no-such-checker"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr == "fsaudit: --check no-such-checker: no such command\n"


def test_git_commit_is_not_crash_consistent(bpf, tmp_path):
    """ALICE's git finding on today's Debian git: a commit does not fsync its loose
    objects and its index before the renames and links that publish them."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for command in (["init", "-q", "."], ["config", "user.email", "a@example.com"], ["config", "user.name", "a"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    (repo / "f").write_text("one\n")
    subprocess.run(["git", "add", "f"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "one"], cwd=repo, check=True)
    report = tmp_path / "crash.json"
    proc = subprocess.run(FSAUDIT + ["crash", "--max-states", "150", "--json", str(report), "--",
                                     str(EXAMPLES / "git_commit.sh"), "--check", str(EXAMPLES / "check_git.sh")],
                          cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(report.read_text())
    assert any("git fsck fails" in f["checker_output"] for f in doc["failures"])
    assert any(c["path"].startswith(f"{repo}/.git/") for f in doc["failures"] for c in f["minimal_cause"])
