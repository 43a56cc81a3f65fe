"""The HTML report (--html): one self-contained page drawn from the report document and its
`timeline` section (fsaudit.analysis.timeline).

Without root: event logs written here, replayed by `fsaudit report` (the page's structure,
the data it embeds, what the timeline draws and how it stays bounded). With the tracer and
Debian's headless Chromium (tests/browser.py): the demo traced for real, the page loaded,
clicked and filtered; attach writes one too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from browser import CHROMIUM, Browser
from conftest import ROOT, attach_while_running, fsaudit
from fsaudit.analysis import timeline as timeline_module
from fsaudit.analysis.timeline import LANES, MARKS, Timeline
from fsaudit.outputs.html import FINDINGS_PER_GROUP, embedded

APP = "/srv/app"        # the synthetic logs' directory: never touched, only named


def write_log(path: Path, events: list[dict], header: dict | None = None, trailer: bool = True) -> Path:
    lines = [{"schema": "fsaudit.events/1", "mode": "run", "host": "test", "kernel": "6", "argv": ["app"],
              **(header or {})}, *events]
    if trailer:
        lines.append({"trailer": "fsaudit.events/1", "events": len(events)})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def ev(t: float, syscall: str, pid: int = 100, **fields) -> dict:
    return {"t": t, "pid": pid, "tid": pid, "syscall": syscall, "ret": 0, **fields}


# A save that does a bit of everything the timeline draws: a write run, an fsync and a failed
# one, a rename, a directory sync, an unlink, a link, a send, a child that exits 3.
STORY = [
    ev(0.001, "exec", path="/usr/bin/app", argv=["app", "--save"]),
    ev(0.002, "runtime", name="c", version=None),
    ev(0.010, "openat", ret=3, fd=3, path=f"{APP}/data.tmp", kind="file", flags=["O_WRONLY", "O_CREAT", "O_EXCL"],
       mode=420, created=True),
    ev(0.020, "write", ret=40960, fd=3, path=f"{APP}/data.tmp", kind="file", calls=10, bytes=40960, size_max=4096,
       t_first=0.011),
    ev(0.021, "fsync", fd=3, path=f"{APP}/data.tmp", kind="file", latency_us=800),
    ev(0.022, "fsync", ret="EIO", fd=3, path=f"{APP}/data.tmp", kind="file", latency_us=50),
    ev(0.023, "close", fd=3, path=f"{APP}/data.tmp", kind="file"),
    ev(0.030, "rename", path=f"{APP}/data.tmp", path2=f"{APP}/data"),
    ev(0.031, "openat", ret=4, fd=4, path=APP, kind="dir", flags=["O_RDONLY", "O_DIRECTORY"], mode=0),
    ev(0.032, "fsync", fd=4, path=APP, kind="dir", latency_us=300),
    ev(0.040, "unlink", path=f"{APP}/old"),
    ev(0.050, "sendto", ret=12, fd=5, kind="socket"),
    ev(0.055, "link", path=f"{APP}/data", path2=f"{APP}/data.bak"),
    ev(0.060, "fork", child=101, flags=17),
    ev(0.061, "exit", pid=101, code=3, signal=None),
    ev(0.070, "exit", code=0, signal=None),
]


class Page(HTMLParser):
    """The elements of a page that matter to self-containment, and the embedded data."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self.styles: list[str] = []
        self.ids: set[str] = set()
        self._open: tuple[str, dict] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag in ("script", "style"):
            self._open = (tag, attrs)

    def handle_data(self, data):
        if self._open is not None:
            tag, attrs = self._open
            (self.scripts.append((attrs, data)) if tag == "script" else self.styles.append(data))
            self._open = None

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._open = None

    def data(self) -> dict:
        [found] = [text for attrs, text in self.scripts if attrs.get("id") == "fsaudit-data"]
        return json.loads(found)


def replay_html(log: Path, tmp_path: Path, *options: str) -> tuple[str, dict]:
    """`fsaudit report LOG --html --json`: the page and the report."""
    page, report = tmp_path / "page.html", tmp_path / "report.json"
    result = fsaudit("report", str(log), "--html", str(page), "--json", str(report), "--fail-on", "never",
                     *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return page.read_text(), json.loads(report.read_text())


def lane(report: dict, path: str) -> dict:
    [found] = [lane for lane in report["timeline"]["files"] if lane["path"] == path]
    return found


def drawn(lane: dict) -> list[tuple]:
    """(kind, t, count, what else the mark says) per mark, pid aside."""
    return [(m["kind"], m["t"], m["count"], {k: v for k, v in m.items() if k not in ("kind", "t", "count", "pid")})
            for m in lane["marks"]]


# The page, without root.

def test_the_page_is_one_self_contained_file_holding_the_report(tmp_path):
    text, report = replay_html(write_log(tmp_path / "story.jsonl", STORY), tmp_path)
    page = Page(text)
    # Nothing to fetch: no element names a URL, every script and style is inline.
    assert not [(tag, attrs) for tag, attrs in page.tags if {"src", "href", "srcset", "action"} & set(attrs)]
    assert not [tag for tag, _ in page.tags if tag in ("link", "iframe", "img", "object", "embed")]
    assert not re.search(r"url\(|@import|https?://(?!fsaudit\.invalid)", "".join(page.styles))
    assert [attrs for attrs, _ in page.scripts] == [{"type": "application/json", "id": "fsaudit-data"}, {}]
    assert {"timeline", "findings", "process-tree", "io", "scope", "detail", "filter", "alerts"} <= page.ids
    # The data is the report, timeline included: the page draws from nothing else.
    data = page.data()
    assert data == {"report": report, "left_out": {"findings": {}, "files": 0, "processes": 0}, "fail_on": "never"}
    assert report["timeline"]["files"] and report["findings"]
    assert page.scripts[1][1].strip().startswith("// fsaudit HTML report")


def test_the_timeline_draws_writes_syncs_names_directory_syncs_and_sends(tmp_path):
    _, report = replay_html(write_log(tmp_path / "story.jsonl", STORY), tmp_path)
    timeline = report["timeline"]
    assert (timeline["start"], timeline["end"]) == (0.001, 0.07)
    assert drawn(lane(report, f"{APP}/data.tmp")) == [
        ("create", 0.01, 1, {}),
        ("write", 0.011, 10, {"end": 0.02, "bytes": 40960}),
        ("fsync", 0.021, 1, {"latency_us": 800}),
        ("fsync", 0.022, 1, {"latency_us": 50, "error": "EIO"}),
        ("rename", 0.03, 1, {"to": f"{APP}/data"}),
    ]
    assert drawn(lane(report, f"{APP}/data")) == [
        ("rename", 0.03, 1, {"from": f"{APP}/data.tmp"}), ("link", 0.055, 1, {"to": f"{APP}/data.bak"})]
    assert drawn(lane(report, f"{APP}/data.bak")) == [("link", 0.055, 1, {"from": f"{APP}/data"})]
    assert drawn(lane(report, f"{APP}/old")) == [("unlink", 0.04, 1, {})]
    # The directory's lane: its sync, and each name changed in it.
    directory = lane(report, APP)
    assert directory["dir"] is True
    assert drawn(directory) == [("entry", 0.01, 1, {}), ("entry", 0.03, 1, {}), ("fsync", 0.032, 1, {"latency_us": 300}),
                                ("entry", 0.04, 1, {}), ("entry", 0.055, 1, {})]
    # Sends on the sender's lane; each process from its first event (or fork) to its exit.
    processes = {p["pid"]: p for p in timeline["processes"]}
    assert drawn(processes[100]) == [("exec", 0.001, 1, {}), ("send", 0.05, 1, {"bytes": 12})]
    assert (processes[100]["start"], processes[100]["end"], processes[100]["exit"]) == (0.001, 0.07, {"code": 0, "signal": None})
    assert (processes[101]["start"], processes[101]["end"], processes[101]["exit"]) == (0.06, 0.061, {"code": 3, "signal": None})
    assert timeline["aggregated"] == {"file_lanes": 0, "file_calls": 0, "file_bytes": 0, "process_lanes": 0,
                                      "process_calls": 0, "out_of_scope_calls": 0, "events_drawn": 16, "marks": 16}


def test_files_outside_the_scope_are_counted_not_drawn(tmp_path):
    _, report = replay_html(write_log(tmp_path / "story.jsonl", STORY), tmp_path, "--exclude", f"{APP}/data*")
    assert sorted(lane["path"] for lane in report["timeline"]["files"]) == [APP, f"{APP}/old"]
    # the write run's 10 calls, 2 fsyncs, the create, and each end of the rename and the link
    assert report["timeline"]["aggregated"]["out_of_scope_calls"] == 10 + 2 + 1 + 2 + 2


def test_no_timeline_is_collected_unless_a_format_draws_it(tmp_path):
    log = write_log(tmp_path / "story.jsonl", STORY)
    result = fsaudit("report", str(log), "--json", "r.json", "--fail-on", "never", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "timeline" not in json.loads((tmp_path / "r.json").read_text())


def test_lost_events_are_on_the_page_and_on_their_own_lane(tmp_path):
    events = [*STORY[:5], {"t": 0.0205, "pid": 0, "tid": 0, "syscall": "lost", "count": 37, "ret": 0}, *STORY[5:]]
    _, report = replay_html(write_log(tmp_path / "lost.jsonl", events), tmp_path)
    assert report["counts"]["lost_events"] == 37 and not report["complete"]
    assert [(m["kind"], m["t"], m["count"]) for m in report["timeline"]["lost"]] == [("lost", 0.0205, 37)]


EVIL = f"{APP}/</script><script>alert(1)</script><!--\x1b[2J\udcff"


def evil_log(tmp_path: Path) -> Path:
    """A file name that would end the script, open markup and move the cursor, with a byte
    that is not UTF-8; an argv that would be markup."""
    events = [ev(0.01, "write", ret=5, fd=3, path=EVIL, kind="file", calls=1, bytes=5, size_max=5, t_first=0.01),
              ev(0.02, "rename", path=EVIL, path2=f"{APP}/data")]
    return write_log(tmp_path / "evil.jsonl", events, {"argv": ["<b>app</b>"]})


def test_untrusted_names_cannot_end_the_script_or_open_markup(tmp_path):
    evil = EVIL
    text, report = replay_html(evil_log(tmp_path), tmp_path)
    page = Page(text)
    assert [attrs for attrs, _ in page.scripts] == [{"type": "application/json", "id": "fsaudit-data"}, {}]
    assert "</script><script>" not in text and "<!--" not in text.split("<script", 1)[1]
    assert page.data()["report"] == report
    assert lane(report, evil)["marks"][0]["bytes"] == 5
    assert "<title>fsaudit report: &lt;b&gt;app&lt;/b&gt;</title>" in text


# Bounds: a lane keeps at most MARKS marks, the digest at most LANES file lanes.

class Named:
    """A finding, as Timeline reads one (Engine.findings)."""

    def __init__(self, path: str, severity: str = "error", rule: str = "FS101") -> None:
        self.path, self.target_path, self.pid, self.severity, self.rule = path, None, 100, severity, rule


def test_a_busy_lane_merges_its_calls_into_at_most_marks_marks_and_keeps_every_count():
    collector = Timeline(lambda path: True, lambda: [])
    for n in range(20_000):     # single writes, an fsync every 100, one failure in the middle
        t = n * 1e-4
        collector.feed(ev(t, "write", ret=64, fd=3, path=f"{APP}/log", kind="file", count=64))
        if n % 100 == 99:
            collector.feed(ev(t, "fsync", ret="EIO" if n == 10_099 else 0, fd=3, path=f"{APP}/log", kind="file",
                              latency_us=n))
    [log] = collector.digest()["files"]
    marks = log["marks"]
    assert len(marks) <= MARKS and log["bucket_s"] > 0
    assert sum(m["count"] for m in marks if m["kind"] == "write") == 20_000
    assert sum(m.get("bytes", 0) for m in marks) == log["bytes"] == 20_000 * 64
    assert sum(m["count"] for m in marks if m["kind"] == "fsync" and "error" not in m) == 199
    assert [(m["count"], m["latency_us"]) for m in marks if m.get("error") == "EIO"] == [(1, 10_099)]
    assert max(m["latency_us"] for m in marks if m["kind"] == "fsync") == 19_999
    assert [m["t"] for m in marks] == sorted(m["t"] for m in marks)


def test_many_files_keep_the_busiest_and_the_flagged_lanes_and_count_the_rest():
    light = f"{APP}/files/777.tmp"      # as light as the others, but a finding names it
    findings: list = []
    collector = Timeline(lambda path: True, lambda: findings)
    for n in range(3000):
        path = f"{APP}/files/{n}.tmp"
        calls = 5 if n % 500 == 0 else 1        # six busier files
        collector.feed(ev(n * 1e-3, "write", ret=100 * calls, fd=3, path=path, kind="file", calls=calls,
                          bytes=100 * calls, size_max=100, t_first=n * 1e-3))
        collector.feed(ev(n * 1e-3, "rename", path=path, path2=f"{APP}/files/{n}"))
        if path == light:
            findings.append(Named(light))
    digest = collector.digest()
    files = digest["files"]
    assert len(files) == LANES
    assert files[0]["path"] == light                    # named by a finding first
    assert (files[1]["path"], files[1]["calls"]) == (f"{APP}/files", 3000)     # then the busiest: a name changed 3000 times
    assert [f["path"] for f in files[2:8]] == [f"{APP}/files/{n}.tmp" for n in range(0, 3000, 500)]
    assert files[8]["calls"] == 2
    aggregated = digest["aggregated"]
    # 3000 files under two names each, and their directory
    assert aggregated["file_lanes"] == 2 * 3000 + 1 - LANES
    # every call counted once: the writes, both ends of each rename, each entry of the directory
    assert aggregated["file_calls"] + sum(f["calls"] for f in files) == (3000 + 6 * 4) + 2 * 3000 + 3000
    assert aggregated["file_bytes"] + sum(f["bytes"] for f in files) == 100 * (3000 + 6 * 4)
    # The collector never held more than WORKING_LANES file lanes.
    assert len(collector.files.lanes) <= timeline_module.WORKING_LANES


def test_the_page_holds_at_most_so_many_findings_per_group():
    finding = {"group": "g1", "path": "/x", "pid": 1}
    report = {"findings": [dict(finding, path=f"/x{n}") for n in range(FINDINGS_PER_GROUP + 7)] + [
        dict(finding, group="g2")], "files": [{"path": "/x0"}, {"path": "/y"}], "processes": [],
        "timeline": {"files": [{"path": "/x0"}], "processes": []}, "target": {"pid": 1}}
    data = embedded(report, "error")
    assert [f["path"] for f in data["report"]["findings"]] == [f"/x{n}" for n in range(FINDINGS_PER_GROUP)] + ["/x"]
    assert data["left_out"] == {"findings": {"g1": 7}, "files": 1, "processes": 0}
    assert data["report"]["files"] == [{"path": "/x0"}]


def test_the_report_schema_documents_the_timeline(tmp_path):
    import jsonschema

    _, report = replay_html(write_log(tmp_path / "story.jsonl", STORY), tmp_path)
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    broken = json.loads(json.dumps(report))
    broken["timeline"]["files"][0]["marks"][0]["kind"] = "teleport"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


# In a real browser.

@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        if os.environ.get("FSAUDIT_REQUIRE_BPF") == "1" or os.environ.get("CI"):
            pytest.fail("chromium is not installed: scripts/setup-host.sh installs it")
        pytest.skip("chromium is not installed")
    with Browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def demo(bpf, tmp_path_factory) -> Path:
    """examples/demo traced for real with --html and --json, in a directory of its own."""
    directory = tmp_path_factory.mktemp("demo")
    exe = directory / "save_naive"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "examples" / "demo" / "save_naive.c")], check=True)
    result = fsaudit("run", "--fail-on", "never", "--html", "report.html", "--json", "report.json",
                     "--events", "events.jsonl", "--", str(exe), cwd=directory)
    assert result.returncode == 0, result.stderr
    return directory


def test_the_demo_page_loads_without_errors_and_shows_the_timeline_and_findings(chromium, demo):
    report = json.loads((demo / "report.json").read_text())
    page = chromium.open((demo / "report.html").as_uri())
    assert page.evaluate("document.body.dataset.ready") == "1"
    assert page.problems() == []
    assert page.requests() == [(demo / "report.html").as_uri()]      # the page itself, nothing else
    tmp, data = str(demo / "data.json.tmp"), str(demo / "data.json")
    lanes = page.evaluate("window.fsaudit.visibleLanes()")
    assert lanes[:3] == [tmp, data, str(demo)]          # flagged first: the error's, then the warning's
    assert page.evaluate("document.querySelectorAll('#lanes rect.write').length") == 1
    assert page.evaluate("document.querySelectorAll('#lanes path.arrow').length") == 1    # tmp -> data
    pins = page.evaluate("[...document.querySelectorAll('.pin')].map(p => [p.dataset.finding, p.classList[1]])")
    assert sorted(pins) == sorted([str(n), f["severity"]] for n, f in enumerate(report["findings"]))
    groups = page.evaluate("[...document.querySelectorAll('.group')].map(g => g.id)")
    assert groups == [f"group-{g['id']}" for g in report["groups"]]


def test_a_click_on_a_finding_shows_its_message_evidence_stack_and_fix(chromium, demo):
    report = json.loads((demo / "report.json").read_text())
    [fs101] = [n for n, f in enumerate(report["findings"]) if f["rule"] == "FS101"]
    page = chromium.open((demo / "report.html").as_uri())
    assert "FS101" not in page.evaluate("document.getElementById('detail').innerText")
    page.click(f".pin[data-finding='{fs101}']")        # a real mouse click on the pin
    detail = page.evaluate("document.getElementById('detail').innerText")
    finding = report["findings"][fs101]
    assert finding["message"] in detail and finding["fix"] in detail
    assert "Evidence" in detail and "rename" in detail and "Stack" in detail
    assert page.evaluate("location.hash") == f"#finding-{fs101}"
    assert page.evaluate(f"document.querySelector(\".finding[data-finding='{fs101}']\").classList.contains('selected')")
    # ... and one in the list, the FS102 of the directory
    [fs102] = [n for n, f in enumerate(report["findings"]) if f["rule"] == "FS102"]
    page.click(f".finding[data-finding='{fs102}']")
    assert report["findings"][fs102]["message"] in page.evaluate("document.getElementById('detail').innerText")
    assert page.problems() == []


def test_the_filter_narrows_the_file_lanes(chromium, demo):
    page = chromium.open((demo / "report.html").as_uri())
    page.evaluate("(() => { const f = document.getElementById('filter'); f.value = 'data.json.tmp'; "
                  "f.dispatchEvent(new Event('input')); })()")
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert [lane for lane in page.evaluate("window.fsaudit.visibleLanes()") if isinstance(lane, str)] == [
        str(demo / "data.json.tmp")]
    assert page.problems() == []


def test_replay_draws_what_the_live_run_drew(demo, tmp_path):
    _, replayed = replay_html(demo / "events.jsonl", tmp_path)
    live = json.loads((demo / "report.json").read_text())
    assert replayed["timeline"] == live["timeline"]
    assert Page((demo / "report.html").read_text()).data()["report"] == live


def test_untrusted_names_are_shown_escaped_in_the_browser(chromium, tmp_path):
    replay_html(evil_log(tmp_path), tmp_path)
    page = chromium.open((tmp_path / "page.html").as_uri())
    assert page.problems() == []
    assert not [event for event in chromium.events if event["method"] == "Page.javascriptDialogOpening"]
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    labels = page.evaluate("[...document.querySelectorAll('.lane-label title')].map(t => t.textContent)")
    assert any(label.startswith(f"{APP}/</script><script>alert(1)</script><!--\\e[2J\\xff") for label in labels), labels


def test_a_page_with_lost_events_says_so_loudly(chromium, tmp_path):
    events = [*STORY[:5], {"t": 0.0205, "pid": 0, "tid": 0, "syscall": "lost", "count": 37, "ret": 0}, *STORY[5:]]
    text, _ = replay_html(write_log(tmp_path / "lost.jsonl", events), tmp_path)
    page = chromium.open((tmp_path / "page.html").as_uri())
    assert page.problems() == []
    assert "37 events were lost" in page.evaluate("document.querySelector('.alert.loud').innerText")
    assert page.evaluate("window.fsaudit.visibleLanes()")[0] == "lost"


def test_a_page_of_many_files_says_what_it_did_not_draw(chromium, tmp_path):
    events = []
    for n in range(1500):
        path = f"{APP}/files/{n}.tmp"
        events += [ev(n * 1e-3, "write", ret=100, fd=3, path=path, kind="file", calls=1, bytes=100, size_max=100,
                      t_first=n * 1e-3),
                   ev(n * 1e-3 + 5e-4, "rename", path=path, path2=f"{APP}/files/{n}")]
    _, report = replay_html(write_log(tmp_path / "many.jsonl", events), tmp_path)
    folded = report["timeline"]["aggregated"]["file_lanes"]
    assert folded == 2 * 1500 + 1 - LANES
    page = chromium.open((tmp_path / "page.html").as_uri())
    assert page.problems() == []
    note = page.evaluate("document.getElementById('aggregated').innerText")
    assert f"{LANES} of {2 * 1500 + 1:,} file lanes are drawn" in note and f"the other {folded:,}" in note
    assert len([lane for lane in page.evaluate("window.fsaudit.visibleLanes()") if isinstance(lane, str)]) == LANES


def test_attach_writes_the_page_too(bpf, build, tmp_path):
    traced = attach_while_running([str(build("story")), "slow"], tmp_path, "--html", str(tmp_path / "attach.html"))
    data = Page((tmp_path / "attach.html").read_text()).data()
    assert data["report"] == traced.report and data["report"]["mode"] == "attach"
    slow = lane(traced.report, str(tmp_path / "slow.dat"))
    kinds = {m["kind"] for m in slow["marks"]}
    assert {"write", "fsync"} <= kinds, slow
