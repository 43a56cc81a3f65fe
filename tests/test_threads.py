"""A process is its threads: it lives while any of them does, and an exec by
any of them replaces its program (the kernel gives that thread the process's id)."""

from __future__ import annotations

import subprocess
import sys

from conftest import Traced
from fsaudit.tracing import tracer


def _exits(t: Traced, pid: int) -> list[dict]:
    exits = t.of("exit", pid=pid)
    assert t.events.index(exits[-1]) == max(i for i, e in enumerate(t.events) if e["pid"] == pid), \
        "the process's exit is its last event"
    return exits


def _process(t: Traced, pid: int) -> dict:
    """pid's entry for the image it ran last (processes[] has one entry per exec)."""
    return [p for p in t.report["processes"] if p["pid"] == pid][-1]


def _file(t: Traced, path: str) -> dict:
    return next(f for f in t.report["files"] if f["path"] == path)


def test_a_thread_that_execs_runs_the_new_program_traced(trace, build, tmp_path):
    t = trace([str(build("threads_exec", "-pthread")), "exec"])
    assert t.returncode == 7, t.stderr
    pid = t.report["target"]["pid"]
    first, second = t.of("exec", pid=pid)
    # The old image's pending write runs end before the new image starts,
    # each under the thread that wrote, on paths that still resolve.
    old_tid = second["old_tid"]
    assert old_tid != pid and second["tid"] == pid and "old_tid" not in first
    index = t.events.index(second)
    assert [(r["tid"], r["calls"], r["bytes"]) for r in t.of("write", path=str(tmp_path / "before.dat"))] == [(pid, 3, 300)]
    thread_runs = t.of("write", path=str(tmp_path / "thread.dat"))
    assert [(r["tid"], r["calls"], r["bytes"]) for r in thread_runs] == [(old_tid, 2, 200)]
    assert all(t.events.index(r) < index for r in thread_runs + t.of("write", path=str(tmp_path / "before.dat")))
    # The new program, seen whole under the process's id.
    tmp, final = str(tmp_path / "data.tmp"), str(tmp_path / "data.dat")
    opened = t.of("openat", pid=pid, path=tmp)
    writes = t.of("write", pid=pid, path=tmp)
    renamed = t.of("rename", pid=pid, path=tmp, path2=final)
    assert opened and renamed and sum(w["calls"] for w in writes) == 5 and sum(w["bytes"] for w in writes) == 500
    assert index < t.events.index(opened[0])
    # Its exit is its own, not the SIGKILL the kernel gave the other threads.
    assert [(e["code"], e["signal"]) for e in _exits(t, pid)] == [(7, None)]
    assert _process(t, pid)["exit"] == {"code": 7, "signal": None}
    assert [(f["path"], f["target_path"]) for f in t.report["findings"] if f["rule"] == "FS101"] == [(tmp, final)]
    assert t.report["complete"] is True


def test_the_process_outlives_its_main_thread(trace, build, tmp_path):
    records = 5000
    t = trace([str(build("threads_exit", "-pthread")), "main_exits", str(records)])
    assert t.returncode == 3, t.stderr
    pid = t.report["target"]["pid"]
    path = str(tmp_path / "log.dat")
    log = _file(t, path)
    assert (log["writes"], log["bytes_written"], log["syncs"]) == (2 * records, 2 * records * 100, 1)
    writers = {r["tid"] for r in t.of("write", path=path)}
    assert len(writers) == 2 and pid not in writers
    assert [(e["code"], e["signal"]) for e in _exits(t, pid)] == [(3, None)]
    assert _process(t, pid)["exit"] == {"code": 3, "signal": None}
    assert t.report["complete"] is True


def test_exit_while_another_thread_runs_keeps_the_exit_code_and_its_writes(trace, build, tmp_path):
    t = trace([str(build("threads_exit", "-pthread")), "exit_running"])
    assert t.returncode == 5, t.stderr
    pid = t.report["target"]["pid"]
    busy = _file(t, str(tmp_path / "busy.dat"))
    assert (busy["writes"], busy["bytes_written"]) == (4, 400)
    assert [(e["code"], e["signal"]) for e in _exits(t, pid)] == [(5, None)]
    assert _process(t, pid)["exit"] == {"code": 5, "signal": None}


def test_main_thread_exiting_after_its_threads_is_one_exit(trace, build, tmp_path):
    t = trace([str(build("story", "-pthread")), "thread"])
    assert t.returncode == 0, t.stderr
    pid = t.report["target"]["pid"]
    assert [(e["tid"], e["code"], e["signal"]) for e in _exits(t, pid)] == [(pid, 0, None)]
    assert _file(t, str(tmp_path / "thread.dat"))["writes"] == 11


def test_group_dead_is_read_from_the_tracepoint_format(tmp_path, monkeypatch):
    events = tmp_path / "events" / "sched" / "sched_process_exit"
    events.mkdir(parents=True)
    fmt = events / "format"
    monkeypatch.setattr(tracer, "TRACEFS_ROOTS", (str(tmp_path / "absent"), str(tmp_path)))
    fmt.write_text("\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:int prio;\toffset:28;\tsize:4;\tsigned:1;\n")
    assert tracer.exit_says_group_dead() is False
    fmt.write_text(fmt.read_text() + "\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;\n")
    assert tracer.exit_says_group_dead() is True
    monkeypatch.setattr(tracer, "TRACEFS_ROOTS", (str(tmp_path / "absent"),))
    assert tracer.exit_says_group_dead() is False


def test_without_group_dead_the_main_thread_exit_ends_the_process(bpf, build, tmp_path):
    """The probe as loaded on a kernel whose tracepoint lacks the field."""
    code = ("import sys; from fsaudit.tracing import tracer; tracer.exit_says_group_dead = lambda: False; "
            "sys.argv[0] = 'fsaudit'; from fsaudit.cli import main; main()")
    events, report = tmp_path / "events.jsonl", tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-c", code, "run", "--fail-on", "never", "--events", str(events),
                           "--json", str(report), "--", str(build("story", "-pthread")), "thread"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    t = Traced(proc, events, report)
    pid = t.report["target"]["pid"]
    assert [(e["tid"], e["code"]) for e in _exits(t, pid)] == [(pid, 0)]
    assert _file(t, str(tmp_path / "thread.dat"))["writes"] == 11
