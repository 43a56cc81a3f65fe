"""The yardstick's own checks, on a made-up report: each one fails on the defect it looks for.

No tracing here: a report, an event log and a summary are written by hand in
the shape `fsaudit run` writes them.
"""

from __future__ import annotations

import json

import pytest
from .realcase import FALSE, NOISE, TRUE, Case, Traced, Truth, check_truth, check_truth_names, misgrouped, misnamed


def made_up(tmp_path, findings, events, summary="fsaudit: 1 warning\n", truths=()):
    work = tmp_path / "w"
    work.mkdir(parents=True)
    (work / "fsaudit-report.json").write_text(json.dumps({"findings": findings}))
    header = {"schema": "fsaudit.events/1"}
    trailer = {"trailer": "fsaudit.events/1", "events": len(events)}
    (work / "fsaudit-events.jsonl").write_text("\n".join(json.dumps(e) for e in [header, *events, trailer]) + "\n")
    (work / "fsaudit-summary.txt").write_text(summary)
    case = Case("made-up", "made up", (), lambda w: [], list(truths))
    return Traced(case, work)


def ev(t, pid, syscall, **fields):
    return {"t": t, "pid": pid, "tid": pid, "syscall": syscall, "ret": 0, **fields}


# sh (pid 10) forks 11, which execs sqlite3 and removes two files in W.
def events(w):
    return [ev(0.0, 10, "exec", path="/bin/sh"), ev(0.1, 10, "fork", child=11, ret=11),
            ev(0.2, 11, "exec", path="/usr/bin/sqlite3"),
            ev(0.3, 11, "unlink", path=f"{w}/t.db-shm"), ev(0.4, 11, "unlink", path=f"{w}/t.db-wal")]


def fs104(w, who="sqlite3", count=2):
    times = f" ({count} removals)" if count > 1 else ""
    return {"rule": "FS104", "severity": "warning", "pid": 11, "path": str(w), "target_path": f"{w}/t.db-wal",
            "message": f"{who} (pid 11) removed {w}/t.db-wal{times} but never fsynced the directory {w} afterwards",
            "evidence": [ev(0.3, 11, "unlink"), ev(0.4, 11, "unlink")], "count": count}


def test_a_stale_process_name_is_caught(tmp_path):
    w = tmp_path / "w"
    assert misnamed(made_up(tmp_path, [fs104(w, "sh")], events(w)))
    assert not misnamed(made_up(tmp_path / "x", [fs104(tmp_path / "x" / "w")], events(tmp_path / "x" / "w")))


def test_a_script_may_be_named_by_its_interpreter(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nrm t.db-wal\n")
    w = tmp_path / "w"
    evs = [ev(0.0, 11, "exec", path=str(script)), ev(0.4, 11, "unlink", path=f"{w}/t.db-wal")]
    assert not misnamed(made_up(tmp_path, [fs104(w, "sh", count=1)], evs))


def test_one_file_named_for_two_is_caught(tmp_path):
    w = tmp_path / "w"
    assert misgrouped(made_up(tmp_path, [fs104(w)], events(w)))
    one = tmp_path / "one"
    w = one / "w"
    single = [e for e in events(w) if not e.get("path", "").endswith("-shm")]
    assert not misgrouped(made_up(one, [fs104(w, count=1)], single))


def test_present_absent_and_info(tmp_path):
    w = tmp_path / "w"
    t = made_up(tmp_path, [fs104(w)], events(w))
    check_truth(t, Truth("FS104", "t.db-wal", TRUE, "made up", by="sqlite3"))
    check_truth_names(t, Truth("FS104", "t.db-wal", TRUE, "made up", by="sqlite3"))
    with pytest.raises(AssertionError):
        check_truth(t, Truth("FS104", "t.db-wal", FALSE, "made up"))
    with pytest.raises(AssertionError):
        check_truth(t, Truth("FS104", "t.db-wal", NOISE, "made up", expect="info"))
    with pytest.raises(AssertionError):     # present, but at warning, not the catalogue's error
        check_truth(t, Truth("FS101", "t.db-wal", TRUE, "made up"))
    with pytest.raises(AssertionError):     # the finding is not by python3
        check_truth(t, Truth("FS104", "t.db-wal", TRUE, "made up", by="python3"))


def test_verdicts_take_the_first_matching_line(tmp_path):
    w = tmp_path / "w"
    truths = [Truth("FS104", "*", FALSE, "made up", only_at=("error",)),
              Truth("FS10[45]", "t.db-*", NOISE, "made up"), Truth("FS104", "*", TRUE, "made up")]
    t = made_up(tmp_path, [fs104(w)], events(w), truths=truths)
    assert t.verdict(t.findings[0]) == NOISE
