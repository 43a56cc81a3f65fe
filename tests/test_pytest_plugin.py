"""pytest --fsaudit (pytest_fsaudit) on small sample projects, each run as its own
`pytest` process with the real tracer: which tests fail, with what text, and what
the summary says.

The sample is examples/pytest (the one docs/pytest.md shows); the other projects
are written here. Each run pays the tracer's start-up once (a few seconds)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "pytest"
TRACING_CAPS = "-sys_admin,-bpf,-perfmon"


class Run:
    """One pytest session: its exit status, output, and each test's outcome and failure text."""

    def __init__(self, proc: subprocess.CompletedProcess, junit: Path) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.outcomes: dict[str, str] = {}
        self.failures: dict[str, str] = {}
        if not junit.exists():
            return
        for case in ElementTree.parse(junit).iter("testcase"):
            failed = case.find("failure")
            self.outcomes[case.get("name")] = "failed" if failed is not None else (
                "error" if case.find("error") is not None else "passed")
            if failed is not None:
                self.failures[case.get("name")] = failed.text or ""

    def summary(self) -> str:
        """The plugin's section of the terminal summary: from its title to the next one."""
        section = re.search(r"^=+ fsaudit =+\n(.*?)^=", self.stdout, re.DOTALL | re.MULTILINE)
        assert section, self.stdout
        return section.group(1)


def run_pytest(project: Path, *options: str, prefix: tuple[str, ...] = ()) -> Run:
    """pytest in project, its temporary directories under project/tmp (so the test
    knows their names), no cache written into it."""
    junit = project / "junit.xml"
    proc = subprocess.run([*prefix, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
                           f"--basetemp={project / 'tmp'}", f"--junitxml={junit}", *options],
                          cwd=project, capture_output=True, text=True)
    return Run(proc, junit)


@pytest.fixture
def sample(tmp_path) -> Path:
    """examples/pytest as a project of its own (its pytest.ini makes it the rootdir)."""
    project = tmp_path / "sample"
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "pytest.ini").write_text("[pytest]\n")
    return project


def test_the_naive_save_fails_naming_fs101_and_the_file_and_the_durable_one_passes(bpf, sample):
    run = run_pytest(sample, "--fsaudit")
    assert run.outcomes == {"test_naive_save": "failed", "test_durable_save": "passed",
                            "test_naive_save_of_a_cache": "passed"}, run.stdout + run.stderr
    assert run.returncode == 1
    failure = run.failures["test_naive_save"]
    saved = sample / "tmp" / "test_naive_save0" / "settings.json"
    assert failure.startswith("fsaudit: FS101 rename-unsynced-data\n")
    assert ("FS101 rename-unsynced-data (error): python" in failure
            and f"renamed {saved}.tmp over {saved} while 17 bytes written to it were not fsynced" in failure)
    assert f"\n  file: {saved}.tmp\n" in failure
    assert "\n  fix: call f.flush() then os.fsync(f.fileno())" in failure
    summary = run.summary()
    assert "test_store.py::test_naive_save: FAILED\n  FS101 rename-unsynced-data (error): " in summary
    assert ("test_store.py::test_naive_save_of_a_cache: passed\n"
            "  FS101 rename-unsynced-data (error) [allowed by @pytest.mark.fsaudit]: ") in summary
    assert "test_store.py::test_durable_save" not in summary   # its directory is in the outside part (FS103)
    assert "1 test failed by fsaudit" in summary


def test_fail_on_never_passes_every_test_and_the_summary_still_lists_the_findings(bpf, sample):
    run = run_pytest(sample, "--fsaudit", "--fsaudit-fail-on", "never")
    assert run.returncode == 0, run.stdout + run.stderr
    assert set(run.outcomes.values()) == {"passed"} and len(run.outcomes) == 3
    summary = run.summary()
    assert "test_store.py::test_naive_save: passed\n  FS101 rename-unsynced-data (error): " in summary
    assert "test_store.py::test_naive_save_of_a_cache: passed\n" in summary
    assert "0 tests failed by fsaudit" in summary


ATTRIBUTION_CONFTEST = '''
import os
import pytest

from store import save_naive


@pytest.fixture
def saved_by_a_fixture(tmp_path):
    save_naive(str(tmp_path / "by-the-fixture.json"), "{}")
    yield
'''

ATTRIBUTION_TESTS = '''
import os
import subprocess
import sys

import pytest

from store import save_naive

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shared.json")
NAIVE_IN_A_CHILD = "import sys; from store import save_naive; save_naive(sys.argv[1], 'from a child')"


# First: a sync() closes every FS101 window still open, which would make the later tests' info.
@pytest.mark.fsaudit(fail_on="info")
def test_sync_of_every_file_system():
    os.sync()


def test_a_child_process_saves(tmp_path):
    subprocess.run([sys.executable, "-c", NAIVE_IN_A_CHILD, str(tmp_path / "child.json")], check=True)


def test_only_the_fixture_saves(saved_by_a_fixture):
    pass


def test_first_save_of_a_shared_file():
    save_naive(SHARED, "first")


def test_second_save_of_the_same_file():
    save_naive(SHARED, "second")


@pytest.mark.fsaudit(fail_on="bad")
def test_with_a_bad_marker():
    pass
'''


def test_each_finding_goes_to_the_test_whose_call_made_it(bpf, tmp_path):
    """A child process's finding is its test's; a fixture's is outside any test; a
    finding that recurs (same rule, file and process) fails the second test too; a
    marker's fail_on tightens one test (FS304 is an info); a bad marker is that test's error."""
    project = tmp_path / "attribution"
    project.mkdir()
    shutil.copy(SAMPLE / "store.py", project)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text(ATTRIBUTION_CONFTEST)
    (project / "test_attribution.py").write_text(ATTRIBUTION_TESTS)
    run = run_pytest(project, "--fsaudit")
    assert run.outcomes == {
        "test_a_child_process_saves": "failed", "test_only_the_fixture_saves": "passed",
        "test_first_save_of_a_shared_file": "failed", "test_second_save_of_the_same_file": "failed",
        "test_sync_of_every_file_system": "failed", "test_with_a_bad_marker": "error"}, run.stdout + run.stderr
    child = project / "tmp" / "test_a_child_process_saves0" / "child.json"
    assert f"file: {child}.tmp\n" in run.failures["test_a_child_process_saves"]
    assert f"file: {project}/shared.json.tmp\n" in run.failures["test_first_save_of_a_shared_file"]
    assert ("[made before this test too, 2 times in all]"
            in run.failures["test_second_save_of_the_same_file"])
    assert run.failures["test_sync_of_every_file_system"].startswith("fsaudit: FS304 whole-fs-sync\n")
    assert "@pytest.mark.fsaudit: fail_on must be one of error, warning, info, never, not 'bad'" in run.stdout
    outside = run.summary().split("outside any test", 1)[1]
    fixture_file = project / "tmp" / "test_only_the_fixture_saves0" / "by-the-fixture.json"
    assert f"renamed {fixture_file}.tmp over {fixture_file}" in outside


def test_a_finding_known_only_at_the_end_fails_the_session_not_the_passed_test(bpf, tmp_path):
    """FS102 is decided at the end of observation (a directory fsync could still come),
    after the test's outcome was reported: the summary puts it under the test, and,
    at or above the test's fail_on, the session's exit status is 1."""
    project = tmp_path / "late"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_late.py").write_text('''
import os
import pytest


@pytest.mark.fsaudit(fail_on="warning")
def test_file_synced_but_not_its_directory(tmp_path):
    with open(tmp_path / "a.tmp", "w") as f:
        f.write("data")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_path / "a.tmp", tmp_path / "a")
''')
    run = run_pytest(project, "--fsaudit")
    assert run.outcomes == {"test_file_synced_but_not_its_directory": "passed"}
    assert run.returncode == 1, run.stdout + run.stderr
    summary = run.summary()
    assert ("test_late.py::test_file_synced_but_not_its_directory: FAILED\n"
            "  FS102 rename-unsynced-dir (warning) [known only after the test's outcome]: ") in summary
    assert "1 known only after their test's outcome fail the session" in summary


def test_without_the_capabilities_pytest_stops_with_one_line_naming_the_check(bpf, sample):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is missing")
    run = run_pytest(sample, "--fsaudit",
                     prefix=(setpriv, f"--inh-caps={TRACING_CAPS}", f"--bounding-set={TRACING_CAPS}", "--"))
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert run.stderr.strip().splitlines() == [
        "ERROR: --fsaudit: cannot trace: [FAIL] capabilities: needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; "
        "has none of them -- fix: run fsaudit as root (sudo) with its capabilities, or grant it CAP_BPF and "
        "CAP_PERFMON"]
    assert "Traceback" not in run.stdout and run.outcomes == {}


def test_without_the_option_nothing_is_traced_and_the_marker_is_known(sample):
    run = run_pytest(sample, "--strict-markers", "-W", "error")
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(run.outcomes) == 3 and " fsaudit " not in run.stdout
