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


def acknowledged(program: list[str]) -> list[str]:
    """program, then "saved" on the command's stdout once it succeeded: the
    acknowledgement a user or a client would act on."""
    return ["sh", "-c", '"$@" && echo saved', "sh", *program]


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """examples/'s naive and durable saves, in C and Python, each acknowledged."""
    out = tmp_path_factory.mktemp("crash-bin")
    built = {}
    for name in ("naive", "durable"):
        subprocess.run(["cc", "-O2", "-o", str(out / name), str(ROOT / "examples" / "c" / f"{name}.c")], check=True)
        built[("c", f"{name}_save")] = acknowledged([str(out / name)])
        built[("python", f"{name}_save")] = acknowledged(
            [sys.executable, str(ROOT / "examples" / "python" / f"{name}.py")])
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


SAVE_TWO = """import os, sys
durable, naive = sys.argv[1], sys.argv[2]
fd = os.open(durable + '/x.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.write(fd, b'new x\\n'); os.fsync(fd); os.close(fd)
os.rename(durable + '/x.tmp', durable + '/x')
fd = os.open(durable, os.O_RDONLY); os.fsync(fd); os.close(fd)
with open(naive + '/y.tmp', 'w') as f:
    f.write('new y\\n')
os.rename(naive + '/y.tmp', naive + '/y')
with open(sys.argv[3], 'w') as f:
    f.write('outside both scopes\\n')
print('saved', flush=True)
"""
CHECK_TWO = """import sys
state, acked = sys.argv[1], open(sys.argv[2]).read()
import os
for path in sys.argv[3:]:
    mounted = [line.split()[4] for line in open('/proc/self/mountinfo')]
    if os.path.dirname(path) not in mounted:
        print(f'{os.path.dirname(path)} is not the state')
        sys.exit(1)
    try:
        text = open(path).read()
    except FileNotFoundError:
        text = ''
    if 'saved' in acked and text not in ('new x\\n', 'new y\\n'):
        print(f'{path} lost: {text!r}')
        sys.exit(1)
"""


def test_several_scopes_are_explored_together(bpf, tmp_path):
    """Two --scope directories are one model: a state holds both, each is mounted at its
    own path for the checker, and what the workload writes elsewhere is not recorded."""
    durable, naive, outside = tmp_path / "durable", tmp_path / "naive", tmp_path / "outside"
    for d in (durable, naive, outside):
        d.mkdir()
    checker = tmp_path / "check_two.py"
    checker.write_text(CHECK_TWO)
    report = tmp_path / "crash.json"
    workload = [sys.executable, "-c", SAVE_TWO, str(durable), str(naive), str(outside / "z")]
    # The checker's own paths come after STATE_DIR ACKED_FILE: give them through a wrapper.
    wrapper = tmp_path / "check.sh"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {checker} "$1" "$2" {durable}/x {naive}/y\n')
    wrapper.chmod(0o755)
    proc = subprocess.run(FSAUDIT + ["crash", "--scope", str(durable), "--scope", str(naive), "--max-states", "80",
                                     "--json", str(report), "--keep", str(tmp_path / "kept"), "--", *workload,
                                     "--check", str(wrapper)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(report.read_text())
    assert doc["scopes"] == sorted([str(durable), str(naive)])
    outputs = " ".join(f["checker_output"] for f in doc["failures"])
    assert f"{naive}/y lost" in outputs and f"{durable}/x lost" not in outputs and "not the state" not in outputs
    causes = {c["path"] for f in doc["failures"] for c in f["minimal_cause"]}
    assert causes and all(p.startswith(f"{naive}/") for p in causes)
    assert not any(str(outside) in json.dumps(f) for f in doc["failures"])
    failure = doc["failures"][0]
    rerun = subprocess.run(failure["rerun"], shell=True, capture_output=True, text=True)
    assert rerun.returncode != 0 and rerun.stdout.strip() in failure["checker_output"]
    assert (durable / "x").read_text() == "new x\n" and (naive / "y").read_text() == "new y\n"
