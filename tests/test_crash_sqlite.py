"""The SQLite acceptance of fsaudit crash (docs/crash.md), on Debian's python3 and
libsqlite3: three commits acknowledged on stdout, the checker counts rows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import FSAUDIT, ROOT

EXAMPLES = ROOT / "examples" / "crash"
PYTHON = shutil.which("python3", path="/usr/bin")    # Debian's, with Debian's libsqlite3
sys.path.insert(0, str(EXAMPLES))
import sqlite_commits  # noqa: E402

pytestmark = pytest.mark.skipif(PYTHON is None, reason="no /usr/bin/python3")


def crash(tmp_path, mode: str, synchronous: str) -> tuple[int, dict]:
    scope = tmp_path / "db"
    scope.mkdir()
    sqlite_commits.make_database(str(scope / "app.db"))
    report = tmp_path / "crash.json"
    proc = subprocess.run(FSAUDIT + ["crash", "--model", "all", "--json", str(report), "--",
                                     PYTHON, str(EXAMPLES / "sqlite_commits.py"), mode, synchronous,
                                     "--check", PYTHON, str(EXAMPLES / "check_sqlite.py")],
                          cwd=scope, capture_output=True, text=True)
    assert proc.stdout.startswith("committed 1\ncommitted 2\ncommitted 3\n"), proc.stderr
    return proc.returncode, json.loads(report.read_text())


def test_delete_journal_full_rolls_back_an_acknowledged_commit(bpf, tmp_path):
    status, doc = crash(tmp_path, "DELETE", "FULL")
    assert status == 1 and doc["states"]["failed"] > 0
    assert {f["model"] for f in doc["failures"]} == {"posix", "ext4-ordered"}
    for failure in doc["failures"]:
        assert [(c["lost"], c["path"].rsplit("/", 1)[1]) for c in failure["minimal_cause"]] == \
            [("unlink", "app.db-journal")]
        assert failure["rule"] == "FS104" and "was acknowledged" in failure["checker_output"]


@pytest.mark.parametrize("mode, synchronous", [("DELETE", "EXTRA"), ("WAL", "FULL")])
def test_a_durable_configuration_has_no_failing_state(bpf, tmp_path, mode, synchronous):
    status, doc = crash(tmp_path, mode, synchronous)
    assert status == 0 and doc["states"]["failed"] == 0 and doc["states"]["checked"] > 20
