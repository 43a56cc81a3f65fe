"""fsaudit crash --html: the workload's timeline with the crash points of the failing
states and their minimal causes, one self-contained page, loaded in headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from browser import CHROMIUM, Browser
from conftest import FSAUDIT, ROOT
from test_html import Page

EXAMPLES = ROOT / "examples" / "crash"
sys.path.insert(0, str(EXAMPLES))
import check_save  # noqa: E402


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        if os.environ.get("FSAUDIT_REQUIRE_BPF") == "1" or os.environ.get("CI"):
            pytest.fail("chromium is not installed: scripts/setup-host.sh installs it")
        pytest.skip("chromium is not installed")
    with Browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def naive(bpf, tmp_path_factory):
    """The naive save explored under posix with --html and --json."""
    directory = tmp_path_factory.mktemp("crash-html")
    scope = directory / "scope"
    scope.mkdir()
    check_save.make_old_record(str(scope))
    proc = subprocess.run(FSAUDIT + ["crash", "--max-states", "80", "--html", str(directory / "crash.html"),
                                     "--json", str(directory / "crash.json"), "--keep", str(directory / "kept"), "--",
                                     "sh", "-c", '"$@" && echo saved', "sh", sys.executable,
                                     str(ROOT / "examples" / "python" / "naive.py"), "--check", sys.executable,
                                     str(EXAMPLES / "check_save.py")], cwd=scope, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    return directory, scope, json.loads((directory / "crash.json").read_text())


def test_the_page_holds_the_trace_and_the_crash_report(naive):
    directory, scope, doc = naive
    page = Page((directory / "crash.html").read_text())
    assert not [(tag, attrs) for tag, attrs in page.tags if {"src", "href", "srcset", "action"} & set(attrs)]
    assert [attrs for attrs, _ in page.scripts] == [{"type": "application/json", "id": "fsaudit-data"}, {}]
    report = page.data()["report"]
    assert report["schema"] == "fsaudit.report/1" and report["mode"] == "crash"
    assert any(lane["path"] == f"{scope}/record.txt" for lane in report["timeline"]["files"])
    assert report["crash"] == {key: value for key, value in doc.items() if key != "findings"}
    assert {f["rule"] for f in report["findings"]} >= {f["rule"] for f in doc["failures"]}


def test_the_failing_crash_points_and_their_causes_are_on_the_timeline(chromium, naive):
    directory, scope, doc = naive
    page = chromium.open((directory / "crash.html").as_uri())
    assert page.evaluate("document.body.dataset.ready") == "1"
    assert page.problems() == []
    assert page.requests() == [(directory / "crash.html").as_uri()]
    assert page.evaluate("document.getElementById('crash-section').hidden") is False
    failures = doc["failures"]
    assert page.evaluate("document.querySelectorAll('#lanes line.crash-point').length") == len(failures)
    assert page.evaluate("document.querySelectorAll('.crash-failure').length") == len(failures)
    # Every unit of each minimal cause whose file has a lane is ringed on it.
    lanes = set(page.evaluate("window.fsaudit.visibleLanes()"))
    ringed = sum(1 for f in failures for c in f["minimal_cause"] if c["path"] in lanes or c.get("path2") in lanes)
    assert ringed and page.evaluate("document.querySelectorAll('#lanes circle.crash-cause').length") == ringed
    text = page.evaluate("document.getElementById('crash').innerText")
    assert "acknowledged but record.txt is the old record" in text and failures[0]["rerun"] in text
    last = len(failures) - 1
    page.click(f"#lanes line.crash-point[data-crash='{last}']")         # a real click on the dashed line
    assert page.evaluate(f"document.getElementById('crash-{last + 1}').classList.contains('selected')")
    assert page.evaluate("[...document.querySelectorAll('#lanes .crash-point.selected')].map(n => n.dataset.crash)") \
        == [str(last)]
