"""Where fsaudit's own outputs go and how they are written (spec: "Files fsaudit writes").

The summary of run and attach goes to stderr or -o, never the command's
stdout; every output is created before anything runs; reports and event
logs are 0600, replaced by rename, never written through a symlink or over
another user's file; a write that fails is one line and exit status 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import FSAUDIT, fsaudit

NOBODY = 65534
OUTPUTS = ("--json", "--events", "--sarif", "--junit", "--html", "-o")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".fsaudit-tmp"))


@pytest.fixture
def log(bpf, tmp_path) -> Path:
    """A recorded event log, whole (it ends with its trailer)."""
    recorded = tmp_path / "log.jsonl"
    result = fsaudit("run", "--events", str(recorded), "--", "true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return recorded


# Item: the summary is not the command's output.

def test_run_leaves_stdout_to_the_command(bpf, tmp_path):
    result = fsaudit("run", "--", "sh", "-c", "echo row", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "row\n"
    assert result.stderr == "No findings.\n"
    as_json = fsaudit("run", "--format", "json", "--", "sh", "-c", "echo row", cwd=tmp_path)
    assert as_json.stdout == "row\n"
    assert json.loads(as_json.stderr)["schema"] == "fsaudit.report/1"


@pytest.mark.parametrize("option", ["-o", "--output"])
def test_run_summary_to_a_file_leaves_stderr_to_the_command(bpf, tmp_path, option):
    result = fsaudit("run", option, "summary.txt", "--", "sh", "-c", "echo row; echo err >&2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("row\n", "err\n")
    assert (tmp_path / "summary.txt").read_text() == "No findings.\n"


def test_attach_summary_goes_to_stderr(bpf, tmp_path):
    target = subprocess.Popen(["sh", "-c", "echo ready; exec sleep infinity"], stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout.readline() == "ready\n"
        result = fsaudit("attach", str(target.pid), "--duration", "0.5", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        assert "No findings." in result.stderr
    finally:
        target.kill()
        target.wait()


def test_report_keeps_its_summary_on_stdout_or_in_o(log, tmp_path):
    result = fsaudit("report", str(log), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No findings.\n"
    result = fsaudit("report", str(log), "-o", "summary.txt", cwd=tmp_path)
    assert result.stdout == "" and (tmp_path / "summary.txt").read_text() == "No findings.\n"
    # two outputs cannot share stdout
    result = fsaudit("report", str(log), "--json", "-", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "fsaudit: --json and the summary would both go to stdout: send one elsewhere\n"


# Item: every output is created before the command starts.

def _unwritable(tmp_path: Path) -> Path:
    directory = tmp_path / "readonly"
    directory.mkdir(mode=0o555)
    return directory / "r.out"


BAD_PATHS = {
    "missing directory": (lambda tmp: Path("/nonexistent/dir/r.out"), "No such file or directory"),
    "a directory": (lambda tmp: tmp, "is a directory"),
    "no write permission": (_unwritable, "Permission denied"),
}


@pytest.mark.parametrize("option", OUTPUTS)
@pytest.mark.parametrize("case", BAD_PATHS)
def test_a_bad_output_path_is_exit_2_and_nothing_runs(bpf, tmp_path, option, case):
    make, says = BAD_PATHS[case]
    path = make(tmp_path)
    # as root, permissions do not apply: fsaudit runs without the capabilities that override them
    drop_dac = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                "--inh-caps=-dac_override,-dac_read_search"]
    good = "--junit" if option == "--sarif" else "--sarif"     # created, then removed again
    result = subprocess.run(drop_dac + FSAUDIT + ["run", good, "ok.out", option, str(path),
                                                 "--", "touch", "marker"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == f"fsaudit: {option} {path}: {says}\n"
    assert not (tmp_path / "marker").exists()
    assert not (tmp_path / "ok.out").exists() and leftovers(tmp_path) == []


# Item: private, never through a symlink or over another user's file, replaced by rename.

def test_outputs_are_private_and_replaced_whole(bpf, tmp_path):
    os.umask(0o022)
    old = tmp_path / "r.json"
    old.write_text("previous report\n")
    os.link(old, tmp_path / "hardlink")
    result = fsaudit("run", "--json", "r.json", "--events", "e.jsonl", "--sarif", "r.sarif",
                     "--junit", "r.xml", "-o", "summary.txt", "--", "true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("r.json", "e.jsonl", "r.sarif", "r.xml", "summary.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    assert json.loads(old.read_text())["schema"] == "fsaudit.report/1"
    # a new file renamed over the name, not the old one truncated and rewritten
    assert (tmp_path / "hardlink").read_text() == "previous report\n"
    assert leftovers(tmp_path) == []


def test_fsaudit_writes_its_files_the_way_it_tells_programs_to(log, tmp_path):
    """fsaudit traced by fsaudit: its own rules find nothing wrong with how it saves."""
    inner = ["--json", "inner.json", "--events", "inner.jsonl", "-o", "inner.txt"]
    result = fsaudit("run", "--json", "outer.json", "--events", "outer.jsonl", "--fail-on", "never",
                     "--", *FSAUDIT, "report", str(log), *inner, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    outer = json.loads((tmp_path / "outer.json").read_text())
    names = [str(tmp_path / name) for name in inner[1::2]]
    assert all((tmp_path / name).exists() for name in inner[1::2])
    about_inner = [f for f in outer["findings"]
                   if any((f.get(key) or "").startswith(tuple(names)) or (f.get(key) or "").endswith(".fsaudit-tmp")
                          for key in ("path", "target_path"))]
    assert about_inner == []
    events = [json.loads(line) for line in (tmp_path / "outer.jsonl").read_text().splitlines()[1:]]
    renamed = [e for e in events if e.get("syscall", "").startswith("rename") and e.get("path2") in names]
    assert len(renamed) == 3 and all(e["ret"] == 0 for e in renamed)
    synced = {e.get("path") for e in events if e.get("syscall") == "fsync" and e.get("ret") == 0}
    assert {e["path"] for e in renamed} <= synced and str(tmp_path) in synced


@pytest.mark.parametrize("option", OUTPUTS)
def test_a_symlink_at_the_path_is_refused_and_its_target_untouched(bpf, tmp_path, option):
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    (tmp_path / "out").symlink_to(target)
    result = fsaudit("run", option, "out", "--", "touch", "marker", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"fsaudit: {option} out: is a symbolic link; fsaudit does not write through one\n"
    assert target.read_text() == "keep me\n" and (tmp_path / "out").is_symlink()
    assert not (tmp_path / "marker").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("option", OUTPUTS)
def test_a_file_another_user_owns_is_refused(bpf, tmp_path, option):
    theirs = tmp_path / "theirs.json"
    theirs.write_text("not yours\n")
    os.chown(theirs, NOBODY, NOBODY)
    result = fsaudit("run", option, str(theirs), "--", "touch", "marker", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"fsaudit: {option} {theirs}: belongs to another user (uid {NOBODY}); "
                             "fsaudit does not replace it\n")
    assert theirs.read_text() == "not yours\n" and theirs.stat().st_uid == NOBODY
    assert not (tmp_path / "marker").exists()


def test_dash_is_stdout_and_devices_and_fifos_are_written_in_place(bpf, tmp_path):
    result = fsaudit("run", "--json", "-", "--events", "/dev/null", "--", "true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == "fsaudit.report/1"
    assert not (tmp_path / "-").exists()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = fsaudit("run", "--sarif", str(fifo), "--", "true", cwd=tmp_path)
    reader.join()
    assert result.returncode == 0, result.stderr
    assert json.loads(received[0])["version"] == "2.1.0"
    assert fifo.is_fifo() and leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["run", "attach", "report"])
def test_help_says_dash_is_stdout(command):
    import typer

    from fsaudit.cli import app

    params = {name: param for param in typer.main.get_command(app).commands[command].params
              for name in param.opts}
    for option in ("--json", "--events", "--sarif", "--junit"):
        assert "(- for stdout)" in params[option].help, option
    assert params["-o"].opts == ["-o", "--output"]
    assert ("stdout" if command == "report" else "stderr (- for stdout)") in params["-o"].help


# Item: a write that fails after tracing is one line and exit 2; the other outputs are written.

def test_a_full_device_is_one_line_and_the_others_are_written(bpf, tmp_path):
    result = fsaudit("run", "--json", "/dev/full", "--sarif", "r.sarif", "-o", "summary.txt",
                     "--", "sh", "-c", "exit 5", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "fsaudit: --json /dev/full: cannot write: No space left on device\n"
    assert json.loads((tmp_path / "r.sarif").read_text())["version"] == "2.1.0"
    assert (tmp_path / "summary.txt").read_text() == "No findings.\n"


@pytest.mark.parametrize("when, command", [
    ("at the end", "true"),
    ("while tracing", "for i in $(seq 500); do echo $i > f; done"),    # more than a buffer of events
])
def test_an_event_log_that_cannot_be_written_loses_only_itself(bpf, tmp_path, when, command):
    result = fsaudit("run", "--events", "/dev/full", "--json", "r.json", "--", "sh", "-c", command, cwd=tmp_path)
    failure = "--events /dev/full: cannot write: No space left on device"
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"fsaudit: {failure}"
    assert "Traceback" not in result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert f"the event log was not written: {failure}" in report["warnings"]


def _last_line_only(result: subprocess.CompletedProcess, line: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == line


def test_report_stdout_full_or_closed(log, tmp_path):
    with open("/dev/full", "w") as full:
        result = subprocess.run(FSAUDIT + ["report", str(log)], stdout=full, stderr=subprocess.PIPE, text=True)
    _last_line_only(result, "fsaudit: stdout: cannot write: No space left on device")
    read_end, write_end = os.pipe()
    os.close(read_end)                     # the reader is gone before fsaudit writes: EPIPE
    try:
        result = subprocess.run(FSAUDIT + ["report", str(log), "--format", "json", "--json", "r.json"],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    finally:
        os.close(write_end)
    _last_line_only(result, "fsaudit: stdout: cannot write: Broken pipe")
    assert json.loads((tmp_path / "r.json").read_text())["schema"] == "fsaudit.report/1"


@pytest.fixture
def shared_dir():
    """A directory user nobody can read but not write (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def test_report_as_a_user_without_write_permission(log, shared_dir):
    shutil.copy(log, shared_dir / "log.jsonl")
    (shared_dir / "log.jsonl").chmod(0o644)
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    result = subprocess.run(as_nobody + [sys.executable, "-m", "fsaudit", "report", "log.jsonl",
                                         "--json", "r.json"],
                            cwd=shared_dir, capture_output=True, text=True)
    _last_line_only(result, "fsaudit: --json r.json: Permission denied")
    assert result.stdout == "" and sorted(p.name for p in shared_dir.iterdir()) == ["log.jsonl"]


# Item: the event log's trailer.

def test_event_log_ends_with_a_trailer_counting_its_events(bpf, log, tmp_path):
    result = fsaudit("run", "--events", "e.jsonl", "--", "sh", "-c", "echo x > f", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "e.jsonl").read_text().splitlines()
    assert json.loads(lines[-1]) == {"trailer": "fsaudit.events/1", "events": len(lines) - 2}
    assert all("syscall" in json.loads(line) for line in lines[1:-1])
    # a replay writes its own log, trailer included
    result = fsaudit("report", str(log), "--events", "again.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    again = (tmp_path / "again.jsonl").read_text().splitlines()
    assert again[1:-1] == log.read_text().splitlines()[1:-1]
    assert json.loads(again[-1]) == {"trailer": "fsaudit.events/1", "events": len(again) - 2}
