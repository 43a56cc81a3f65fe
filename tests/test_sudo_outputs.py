"""`sudo fsaudit ...`: the outputs are the invoking user's, as they would be without sudo.
fsaudit runs as root here, so sudo is stood in for by its SUDO_UID and SUDO_GID."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from conftest import fsaudit

USER, GROUP = 65534, 65534       # the user who "ran sudo" (nobody, nogroup)
OTHER_GROUP, OTHER_USER = 12345, 12346


def sudo_env(**extra: str) -> dict:
    return {**os.environ, "SUDO_UID": str(USER), "SUDO_GID": str(GROUP), "SUDO_USER": "nobody", **extra}


def owned(path: Path, uid: int, gid: int) -> Path:
    path.write_text("previous")
    os.chown(path, uid, gid)
    return path


def test_under_sudo_the_invokers_file_is_replaced_keeping_its_owner_and_new_files_are_theirs(bpf, tmp_path):
    report = owned(tmp_path / "out.json", USER, OTHER_GROUP)
    result = fsaudit("run", "--no-live", "--json", str(report), "--events", str(tmp_path / "new.jsonl"),
                     "--", "true", cwd=tmp_path, env=sudo_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["schema"] == "fsaudit.report/1"
    for path, owner in ((report, (USER, OTHER_GROUP)), (tmp_path / "new.jsonl", (USER, GROUP))):
        info = path.stat()
        assert (info.st_uid, info.st_gid) == owner
        assert stat.S_IMODE(info.st_mode) == 0o600
    assert not list(tmp_path.glob(".*fsaudit-tmp"))


def test_under_sudo_a_third_users_file_is_still_refused_and_nothing_runs(tmp_path):
    theirs = owned(tmp_path / "out.json", OTHER_USER, OTHER_GROUP)
    result = fsaudit("run", "--json", str(theirs), "--", "touch", "ran", cwd=tmp_path, env=sudo_env())
    assert result.returncode == 2
    assert result.stderr == (f"fsaudit: --json {theirs}: belongs to another user (uid {OTHER_USER}); "
                             "fsaudit does not replace it\n")
    assert theirs.read_text() == "previous" and not (tmp_path / "ran").exists()


def test_without_sudo_another_users_file_is_refused(tmp_path):
    theirs = owned(tmp_path / "out.json", USER, GROUP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    result = fsaudit("run", "--json", str(theirs), "--", "touch", "ran", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "belongs to another user (uid 65534)" in result.stderr
    assert theirs.read_text() == "previous" and not (tmp_path / "ran").exists()
