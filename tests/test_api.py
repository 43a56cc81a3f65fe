"""fsaudit.api called directly, as the pytest plugin and `crash` call it: no typer, no terminal.

The commands' behaviour is held by test_cli, test_attach and test_live; these
hold what the library promises its callers: the Result, the errors and
their exit codes, signal handlers given back, the command's stdio left alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from fsaudit import api

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def found(findings, root) -> set[tuple[str, str]]:
    return {(f.rule, os.path.relpath(f.path, root)) for f in findings}


def quiet(tmp_path, **options) -> api.OutputOptions:
    """Outputs with the summary out of the test's way."""
    return api.OutputOptions(summary_path=str(tmp_path / "summary.txt"), **options)


def test_trace_command_returns_the_findings_and_replaying_its_log_gives_the_same(bpf, build, tmp_path, monkeypatch):
    exe = build("rules")
    for mode in ("fs101", "fs101_ok"):
        (tmp_path / mode).mkdir()
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "events.jsonl"
    handlers = [signal.getsignal(signum) for signum in HANDLED]

    traced = api.trace_command([str(exe), "fs101", "fs101_ok", "status=3"],
                               quiet(tmp_path, events_path=str(log), fail_on="error"))

    assert found(traced.findings, tmp_path) == {("FS101", "fs101/a.tmp")}
    assert traced.status == 1            # an error finding, at --fail-on error, outranks the command's 3
    assert [signal.getsignal(signum) for signum in HANDLED] == handlers
    replayed = api.analyse_log(log, quiet(tmp_path, fail_on="never"))
    assert found(replayed.findings, tmp_path) == {("FS101", "fs101/a.tmp")}
    assert replayed.status == 0


def test_without_findings_the_status_is_the_commands_and_its_stdio_is_fsaudits(bpf, tmp_path, capfd):
    # In scope only tmp_path: the command's stdout is pytest's capture file, left unsynced (FS105).
    result = api.trace_command(["sh", "-c", "echo from the command; exit 3"],
                               quiet(tmp_path, paths=[f"{tmp_path}/*"]))
    assert (result.status, result.findings) == (3, [])
    assert capfd.readouterr().out == "from the command\n"     # no view: nothing took the command's stdout


def test_killed_by_a_signal_is_128_plus_its_number(bpf, tmp_path):
    assert api.trace_command(["sh", "-c", "kill -TERM $$"], quiet(tmp_path)).status == 128 + signal.SIGTERM


def test_attach_calls_on_attached_once_tracing_and_returns_what_the_tree_did(bpf, tmp_path):
    target = subprocess.Popen(["sh", "-c", "echo ready; read go; echo data > a.tmp; mv a.tmp a.dat"],
                              cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout.readline() == "ready\n"
        told = []

        def attached(descendants: int) -> None:
            told.append(descendants)
            target.stdin.write("go\n")     # only now does the target write and rename: all of it traced
            target.stdin.close()

        result = api.attach(target.pid, quiet(tmp_path, fail_on="never"), duration=120, on_attached=attached)
    finally:
        target.kill()
        target.wait()
    assert told == [0]
    assert found(result.findings, tmp_path) == {("FS101", "a.tmp"), ("FS102", ".")}
    assert result.status == 0


@pytest.mark.parametrize("call, error, message", [
    (lambda tmp: api.trace_command([], quiet(tmp)), api.UsageError, "no command to trace"),
    (lambda tmp: api.trace_command(["true"], quiet(tmp, fail_on="sometimes")), api.UsageError,
     "--fail-on must be one of error, warning, info, never, not 'sometimes'"),
    (lambda tmp: api.attach(0, quiet(tmp)), api.UsageError, "no process with pid 0"),
    (lambda tmp: api.analyse_log(tmp / "absent.jsonl", quiet(tmp)), api.UsageError, "absent.jsonl: No such file"),
])
def test_bad_input_is_a_usage_error_before_anything_runs(call, error, message, tmp_path):
    with pytest.raises(error) as raised:
        call(tmp_path)
    assert message in str(raised.value)
    assert raised.value.exit_code == 2
    assert not (tmp_path / "summary.txt").exists()


def test_a_command_that_cannot_start_is_exit_code_127_and_writes_no_report(bpf, tmp_path):
    with pytest.raises(api.CannotStart) as raised:
        api.trace_command([str(tmp_path / "absent")], quiet(tmp_path, files={"json": str(tmp_path / "r.json")}))
    assert str(raised.value) == f"cannot start {tmp_path / 'absent'}: No such file or directory"
    assert raised.value.exit_code == 127
    assert not (tmp_path / "r.json").exists()


def test_a_failed_call_keeps_no_descriptor_and_no_temporary_file(tmp_path):
    """A library caller lives on after an error (a pytest session): the outputs
    opened for a call that failed are closed and their temporary files gone."""
    log = tmp_path / "bad.jsonl"
    log.write_text('{"schema": "fsaudit.events/1"}\n{"t": 1, "pid": "x", "tid": 1, "syscall": "write", "ret": 0}\n')
    out = tmp_path / "out"
    out.mkdir()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(api.UsageError):
            api.analyse_log(log, quiet(tmp_path, files={"json": str(out / "r.json")}, events_path=str(out / "e.jsonl")))
    assert len(os.listdir("/proc/self/fd")) == before
    assert os.listdir(out) == []


def naive_save(path) -> None:
    with open(f"{path}.tmp", "w") as f:
        f.write("saved")
    os.replace(f"{path}.tmp", path)


def test_trace_in_background_times_each_finding_on_the_callers_clock(bpf, tmp_path):
    """What the pytest plugin relies on: findings on request while the caller goes on,
    each call's time comparable with now(), a stable order with recurrences counted in
    place, the findings decided at the end only at stop(), and the helper untraced."""
    report = tmp_path / "report.json"
    trace = api.trace_in_background(quiet(tmp_path, paths=[f"{tmp_path}/*"], files={"json": str(report)}))
    try:
        before_first = trace.now()
        naive_save(tmp_path / "first")
        after_first = trace.now()
        naive_save(tmp_path / "second")
        after_second = trace.now()
        [first, second] = trace.findings()
        naive_save(tmp_path / "first")
        again = trace.findings()
    finally:
        result = trace.stop()
    assert (first.rule, first.path, second.rule, second.path) == (
        "FS101", f"{tmp_path}/first.tmp", "FS101", f"{tmp_path}/second.tmp")
    assert before_first <= api.called_at(first) <= after_first <= api.called_at(second) <= after_second
    assert [(f.path, f.count) for f in again] == [(first.path, 2), (second.path, 1)]
    assert [(f.rule, f.path) for f in result.findings] == [
        ("FS101", first.path), ("FS101", second.path), ("FS102", str(tmp_path))]
    assert result.status == 1 and result.warnings == []
    assert [p["pid"] for p in json.loads(report.read_text())["processes"]] == [os.getpid()]


def test_trace_in_background_checks_its_outputs_before_starting_anything(tmp_path):
    with pytest.raises(api.UsageError) as raised:
        api.trace_in_background(quiet(tmp_path, fail_on="sometimes"))
    assert "--fail-on must be one of" in str(raised.value)


def children_running(code: str) -> list[int]:
    """Our child processes whose command line holds code."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                argv = cmdline.read().decode(errors="replace")
        except (OSError, ValueError):
            continue
        if ppid == os.getpid() and code in argv:
            found.append(int(name))
    return found


def test_a_helper_that_dies_is_one_error_naming_its_status(bpf, tmp_path):
    trace = api.trace_in_background(quiet(tmp_path, paths=[f"{tmp_path}/*"]))
    [helper] = children_running("_serve_background")
    os.kill(helper, signal.SIGKILL)
    with pytest.raises(api.CannotTrace) as raised:
        trace.findings()
    assert str(raised.value) == f"the tracer's helper process ended (status {-signal.SIGKILL})"
    assert children_running("_serve_background") == []
    with pytest.raises(api.UsageError, match="this trace has stopped"):
        trace.stop()
