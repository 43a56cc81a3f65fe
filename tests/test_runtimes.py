"""Runtimes: fingerprinting, per-runtime fix text, the I/O profile and `fsaudit compare`.

Every example of examples/ (examples.tsv) runs under the real tracer: the
process that saved the record must be named with its runtime, the naive save
must get FS101 and FS102 and the durable one nothing at warning or above, and
the fixes must speak the runtime's API. The I/O profile is checked against an
independent measurement: the same program under strace.

CoreCLR (.NET) cannot be installed here: it is checked on a synthetic
/proc/PID/maps and a synthetic event log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, fsaudit

from fsaudit.tracing import runtimes
from fsaudit.analysis.engine import Engine
from fsaudit.analysis.fixes import FIXES
from fsaudit.outputs.report import build_report
from fsaudit.analysis.rules import RULES_BY_CODE

EXAMPLES = ROOT / "examples"
# Runtime names by the examples' directory, and the runtime's sync API that its fixes name
# (.NET has no directory sync API: its directory fixes P/Invoke libc).
RUNTIME_OF = {"c": "c", "python": "cpython", "go": "go", "java": "jvm", "node": "node", "rust": "rust",
              "mono": "mono"}
API_WORD = {"cpython": ("os.fsync",), "go": ("Sync()",), "jvm": ("force(true)",), "node": ("fs.fsyncSync",),
            "rust": ("sync_all",), "mono": ("Flush(true)", "P/Invoke libc")}


def example_commands() -> dict[str, list[str]]:
    """examples.tsv: name -> argv."""
    commands = {}
    for line in (EXAMPLES / "examples.tsv").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, command = line.split("\t", 1)
        commands[name] = [word.replace("{build}", str(EXAMPLES / "build")).replace("{src}", str(EXAMPLES))
                          for word in command.split()]
    return commands


COMMANDS = example_commands()


@pytest.fixture(scope="session")
def examples_built() -> None:
    result = subprocess.run(["make", "-C", str(EXAMPLES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def strace_writes(argv: list[str], directory: Path) -> list[int]:
    """The sizes of the successful writes the program made to regular files in
    scope (not /proc, /sys, /dev), in order, as strace sees them."""
    directory.mkdir()
    subprocess.run(["strace", "-ff", "-qq", "-y", "-s", "0", "-o", str(directory / ".strace"),
                    "-e", "trace=write,pwrite64,writev,pwritev,pwritev2", "--", *argv],
                   cwd=directory, check=True, capture_output=True)
    call = re.compile(r"^(?:write|pwrite64|writev|pwritev2?)\(\d+<(/[^>]*)>,.*\)\s+=\s+(\d+)$")
    sizes = []
    for trace in sorted(directory.glob(".strace.*")):
        for line in trace.read_text().splitlines():
            match = call.match(line)
            if match and not match.group(1).startswith(("/proc/", "/sys/", "/dev/")) and int(match.group(2)):
                sizes.append(int(match.group(2)))
    return sizes


def writer(report: dict) -> dict:
    """The one process whose I/O the report profiles: the one that wrote."""
    writers = [p for p in report["processes"] if p["io"]["bytes_written"]]
    assert len(writers) == 1, report["processes"]
    return writers[0]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_example_runtime_findings_fixes_and_profile(examples_built, trace, tmp_path, name):
    runtime = RUNTIME_OF[name.split("-")[0]]
    t = trace(COMMANDS[name])
    assert t.returncode == 0, t.stderr
    record = tmp_path / "record.txt"
    assert record.read_text().count("\n") == 500
    process = writer(t.report)

    assert process["runtime"]["name"] == runtime, process
    assert t.of("runtime", pid=process["pid"])[-1]["name"] == runtime

    findings = t.report["findings"]
    serious = {f["rule"] for f in findings if f["severity"] in ("error", "warning")}
    if name.endswith("-naive"):
        assert {"FS101", "FS102"} <= serious, findings
    else:
        assert serious == set(), findings
    for f in findings:
        assert f["pid"] == process["pid"] and f["runtime"] == runtime, f
        generic = RULES_BY_CODE[f["rule"]].fix
        if runtime == "c":
            assert f["fix"] == generic
        else:
            assert f["fix"] != generic and any(word in f["fix"] for word in API_WORD[runtime]), f

    io = process["io"]
    sizes = strace_writes(COMMANDS[name], tmp_path / "strace")
    assert (io["writes"], io["bytes_written"], io["write_size_max"]) == (len(sizes), sum(sizes), max(sizes))
    median = sorted(sizes)[(len(sizes) - 1) // 2]
    full_buffers_and_a_tail = len([s for s in sizes if s != max(sizes)]) <= 1
    if full_buffers_and_a_tail:
        assert io["write_size_p50"] == median, sizes
    else:   # runs fold calls into a count, a total and the largest: p50 is an estimate within the sizes
        assert min(sizes) <= io["write_size_p50"] <= max(sizes), sizes
    syncs = 1 if name.endswith("-durable") else 0
    assert (io["fsync"], io["dir_syncs"]) == (syncs, syncs), io
    # Mono's File.Move links the new name and unlinks the old: no rename at all.
    assert (io["renames"], io["links"]) == ((0, 1) if runtime == "mono" else (1, 0)), io


def test_replay_gives_the_runtime_of_the_live_run(examples_built, trace, tmp_path):
    t = trace(COMMANDS["java-naive"])
    replayed = tmp_path / "replayed.json"
    result = fsaudit("report", str(t.events_path), "--json", str(replayed), "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    again = json.loads(replayed.read_text())
    assert [p["runtime"] for p in again["processes"]] == [p["runtime"] for p in t.report["processes"]]
    assert [(f["rule"], f["runtime"], f["fix"]) for f in again["findings"]] == \
           [(f["rule"], f["runtime"], f["fix"]) for f in t.report["findings"]]
    # libjvm.so is dlopen'ed by the launcher, after the exec: the version comes from the JDK's release file.
    runtime = writer(t.report)["runtime"]
    assert runtime["name"] == "jvm" and runtime["version"]


def test_exec_of_a_script_names_its_interpreter(bpf, trace, tmp_path):
    script = tmp_path / "save"
    script.write_text("#!/usr/bin/python3\nopen('out', 'w').write('x')\n")
    script.chmod(0o755)
    t = trace([str(script)])
    assert t.returncode == 0, t.stderr
    assert t.of("exec")[-1]["path"] == str(script)
    (runtime,) = t.of("runtime")
    assert runtime["name"] == "cpython"
    # Once the process is gone (no /proc/PID/exe), the #! line names the interpreter.
    assert runtimes.exe_of_exec(0, str(script)) == os.path.realpath("/usr/bin/python3")
    env_script = tmp_path / "env-save"
    env_script.write_text("#!/usr/bin/env sh\n")
    assert runtimes.exe_of_exec(0, str(env_script)) == os.path.realpath(shutil.which("sh"))


def test_attach_names_the_runtime_of_a_running_process(bpf, tmp_path):
    # "ready" once past the dynamic loader (attach reads /proc/PID/maps and the exe); then it waits to be killed
    sleeper = subprocess.Popen(["/usr/bin/python3", "-c", "import signal; print('ready', flush=True); signal.pause()"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert sleeper.stdout.readline() == "ready\n"
        report = tmp_path / "report.json"
        result = fsaudit("attach", str(sleeper.pid), "--duration", "0.5", "--json", str(report))
        assert result.returncode == 0, result.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    (process,) = [p for p in json.loads(report.read_text())["processes"] if p["pid"] == sleeper.pid]
    version = re.search(r"python(\d+\.\d+)$", os.path.realpath("/usr/bin/python3")).group(1)
    assert process["runtime"] == {"name": "cpython", "version": version}


# CoreCLR and friends, on synthetic maps: .NET is not installable here.

DOTNET_MAPS = """\
55d0c0a00000-55d0c0a10000 r-xp 00001000 08:01 4242 /usr/share/dotnet/dotnet
7f5a10000000-7f5a10400000 r-xp 00020000 08:01 4243 /usr/share/dotnet/host/fxr/7.0.5/libhostfxr.so
7f5a20000000-7f5a20800000 r-xp 00100000 08:01 4244 /usr/share/dotnet/shared/Microsoft.NETCore.App/7.0.5/libcoreclr.so
7f5a30000000-7f5a30400000 r-xp 00010000 08:01 4245 /usr/share/dotnet/shared/Microsoft.NETCore.App/7.0.5/libclrjit.so
7f5a40000000-7f5a40010000 r-xp 00001000 08:01 4246 /usr/share/dotnet/shared/Microsoft.NETCore.App/7.0.5/libSystem.Native.so
7f5a50000000-7f5a50100000 r-xp 00028000 08:01 4247 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
"""


def test_coreclr_is_recognised_by_its_libraries_in_maps():
    libraries = runtimes.libraries_from_maps(DOTNET_MAPS)
    assert [os.path.basename(p) for p in libraries] == ["libcoreclr.so", "libclrjit.so", "libSystem.Native.so"]
    found = runtimes.classify("/usr/share/dotnet/dotnet", runtimes.ElfFacts(), libraries)
    assert (found.name, found.version) == ("dotnet", "7.0.5")
    # libSystem.Native.so alone (an app that has not JIT-loaded the rest yet) is enough; no version then.
    native_only = [p for p in libraries if p.endswith("libSystem.Native.so")][:1]
    assert runtimes.classify("/app/app", runtimes.ElfFacts(), native_only).name == "dotnet"


def test_other_signatures_on_synthetic_facts():
    plain = runtimes.ElfFacts()
    assert runtimes.classify("/app/server", runtimes.ElfFacts(exports=frozenset({"DotNetRuntimeDebugHeader"}))).name == "dotnet"
    mono = runtimes.classify("/usr/bin/mono", plain, ["/usr/lib/libmonosgen-2.0.so.1"])
    assert mono.name == "mono"
    node = runtimes.classify("/usr/bin/node", plain, ["/usr/lib/x86_64-linux-gnu/libnode.so.108"])
    assert node.name == "node"
    python = runtimes.classify("/usr/bin/app", plain, ["/opt/py/lib/libpython3.12.so.1.0"])
    assert (python.name, python.version) == ("cpython", "3.12")
    assert runtimes.classify("/usr/bin/true", plain).name == "c"
    assert runtimes.classify("/usr/bin/true", None) is None   # nothing readable: unknown, not "c"


def test_this_test_process_is_cpython():
    found = runtimes.fingerprint_pid(os.getpid())
    assert (found.name, found.version) == ("cpython", f"{sys.version_info.major}.{sys.version_info.minor}")


def test_real_executables_are_read_from_their_elf():
    go = runtimes.read_elf(os.path.realpath("/usr/bin/go"))
    assert go.go and go.go_version.startswith("go1.")
    python = runtimes.read_elf(os.path.realpath("/usr/bin/python3"))
    assert "_PyRuntime" in python.exports
    assert runtimes.read_elf(str(EXAMPLES / "python" / "naive.py")) is None
    assert runtimes.read_elf("/nonexistent") is None


def _dotnet_save(version: str) -> list[dict]:
    """A .NET process that wrote a temp file and renamed it over the target unsynced."""
    pid = 100
    return [
        {"t": 0.0, "pid": pid, "tid": pid, "syscall": "exec", "path": "/usr/share/dotnet/dotnet", "ret": 0,
         "argv": ["dotnet", "app.dll"]},
        {"t": 0.1, "pid": pid, "tid": pid, "syscall": "runtime", "name": "dotnet", "version": version,
         "signature": "libcoreclr.so mapped", "ret": 0},
        {"t": 0.2, "pid": pid, "tid": pid, "syscall": "openat", "path": "/srv/a.tmp", "fd": 3,
         "flags": ["O_WRONLY", "O_CREAT", "O_TRUNC"], "kind": "file", "created": True, "ret": 3},
        {"t": 0.3, "pid": pid, "tid": pid, "syscall": "write", "fd": 3, "path": "/srv/a.tmp", "kind": "file",
         "calls": 3, "bytes": 10000, "size_max": 4096, "ret": 10000},
        {"t": 0.4, "pid": pid, "tid": pid, "syscall": "rename", "path": "/srv/a.tmp", "path2": "/srv/a", "ret": 0},
        {"t": 0.5, "pid": pid, "tid": pid, "syscall": "exit", "code": 0, "signal": None, "ret": 0},
    ]


def _report(events: list[dict]) -> dict:
    engine = Engine()
    for event in events:
        engine.feed(event)
    engine.finish()
    return build_report(engine, mode="report", target={}, started_at="2026-01-01T00:00:00.000Z",
                        duration_s=0.0, tool_version="test")


@pytest.mark.parametrize("version, noted", [("6.0.25", True), ("7.0.5", True), ("8.0.1", False), (None, False)])
def test_dotnet_flush_bug_is_noted_on_the_versions_it_hit(version, noted):
    report = _report(_dotnet_save(version))
    assert report["processes"][0]["runtime"] == {"name": "dotnet", "version": version}
    (fs101,) = [f for f in report["findings"] if f["rule"] == "FS101"]
    assert fs101["runtime"] == "dotnet" and fs101["fix"] == FIXES["FS101"]["dotnet"]
    assert any("dotnet/runtime#77373" in note for note in fs101["notes"]) == noted
    (fs102,) = [f for f in report["findings"] if f["rule"] == "FS102"]
    assert fs102["notes"] == []   # the bug skips a file fsync; it does not explain a directory's


def test_profile_of_a_folded_run_and_a_runtime_announced_late():
    events = _dotnet_save("7.0.5")
    runtime_event = events.pop(1)
    events.insert(-1, runtime_event)    # announced after the rename that FS101 reports on
    report = _report(events)
    io = report["processes"][0]["io"]
    # 3 calls, 10000 bytes, the largest 4096: two full 4096-byte buffers and a 1808-byte tail.
    assert (io["writes"], io["write_size_p50"], io["write_size_max"]) == (3, 4096, 4096)
    assert all(f["runtime"] == "dotnet" for f in report["findings"])


def test_exec_starts_a_new_image_whose_runtime_is_not_the_old_one():
    events = _dotnet_save("8.0.1")
    events.insert(2, {"t": 0.15, "pid": 100, "tid": 100, "syscall": "exec", "path": "/bin/sh", "ret": 0})
    report = _report(events)
    before, after = [p for p in report["processes"] if p["pid"] == 100]     # one entry per exec
    assert before["runtime"]["name"] == "dotnet" and after["runtime"] is None and after["exe"] == "/bin/sh"
    assert all(f["runtime"] is None for f in report["findings"])


# fsaudit compare


def test_compare_prints_one_row_per_report_from_its_figures(examples_built, trace, tmp_path):
    reports = []
    for name in ("c-naive", "node-durable"):
        t = trace(COMMANDS[name], cwd=tmp_path)
        saved = tmp_path / f"{name}.json"
        saved.write_text(t.report_path.read_text())
        reports.append((saved, t.report))
    result = fsaudit("compare", *(str(path) for path, _ in reports))
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["report", "runtime", "writes"]
    assert len(rows) == 2
    for line, (path, report) in zip(rows, reports):
        process = writer(report)
        io = process["io"]
        runtime = " ".join(filter(None, (process["runtime"]["name"], process["runtime"]["version"])))
        codes = sorted({f["rule"] for f in report["findings"]}) or ["-"]
        expected = [path.stem, *runtime.split(), str(io["writes"]), str(io["bytes_written"]),
                    str(io["write_size_p50"]), str(io["write_size_max"]), str(io["fsync"]), str(io["fdatasync"]),
                    str(io["dir_syncs"]), "rename",
                    "{error}/{warning}/{info}".format(**report["summary"]), *codes]
        assert line.split() == expected

    markdown = fsaudit("compare", "--markdown", *(str(path) for path, _ in reports))
    assert markdown.returncode == 0 and markdown.stdout.count("\n| c-naive |") == 1


def test_compare_refuses_what_is_not_a_report(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"schema": "fsaudit.events/1"}\n')
    result = fsaudit("compare", str(events))
    assert result.returncode == 2 and "not" in result.stderr and str(events) in result.stderr
    missing = fsaudit("compare", str(tmp_path / "missing.json"))
    assert missing.returncode == 2
    hollow = tmp_path / "hollow.json"
    hollow.write_text('{"schema": "fsaudit.report/1"}')
    result = fsaudit("compare", str(hollow))
    assert result.returncode == 2 and "malformed report" in result.stderr, result.stderr
