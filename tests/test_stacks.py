"""--stacks on real programs: the triggering call's code, by function, file and line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
from conftest import PROGRAMS, Traced, attach_while_running, fsaudit

SOURCE = PROGRAMS / "stacks.c"
SCHEMAS = Path(__file__).parent / "schemas"


def line_of(marker: str) -> int:
    """The line of SOURCE carrying `// @marker`."""
    lines = SOURCE.read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.rstrip().endswith(f"// @{marker}"))


def frame(function: str, marker: str) -> str:
    return f"{function} ({SOURCE}:{line_of(marker)})"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """stacks.c with frame pointers (a full stack) and without (gcc's -O2 default)."""
    out = tmp_path_factory.mktemp("stacks")
    variants = {"fp": ["-O1", "-fno-omit-frame-pointer"], "nofp": ["-O2"]}
    for name, flags in variants.items():
        subprocess.run(["cc", "-g", *flags, "-pthread", "-o", str(out / name), str(SOURCE)], check=True)
    return out


def finding(t: Traced, rule: str, path_end: str) -> dict:
    return next(f for f in t.report["findings"] if f["rule"] == rule and f["path"].endswith(path_end))


def test_finding_names_the_function_file_and_line_of_the_call(trace, compiled):
    t = trace([str(compiled / "fp"), "plain"], "--stacks", "--sarif", "report.sarif")
    fs101 = finding(t, "FS101", "/data.tmp")
    assert fs101["stack"] == ["rename", frame("save_naive", "rename"), frame("main", "main")]
    write = t.of("write", path=str(t.events_path.parent / "data.tmp"))[0]
    assert write["stack"] == ["write", frame("write_record", "write"), frame("save_naive", "record"),
                              frame("main", "main")]
    opened = t.of("openat", path=str(t.events_path.parent / "data.tmp"))[0]
    assert opened["stack"][:2] == ["open64", frame("save_naive", "open")]
    assert f"    at: {frame('save_naive', 'rename')}" in t.stderr


def test_sarif_result_is_located_at_the_line_of_code(trace, compiled):
    t = trace([str(compiled / "fp"), "plain"], "--stacks", "--sarif", "report.sarif")
    sarif = json.loads((t.events_path.parent / "report.sarif").read_text())
    jsonschema.Draft4Validator(json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())).validate(sarif)
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "FS101")
    source = result["locations"][0]["physicalLocation"]
    assert source == {"artifactLocation": {"uri": SOURCE.as_uri()}, "region": {"startLine": line_of("rename")}}
    # the file is a related location: the result is about the line of code
    assert result["relatedLocations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "data.tmp",
                                                                                     "uriBaseId": "%SRCROOT%"}
    frames = result["stacks"][0]["frames"]
    assert frames[0] == {"location": {"message": {"text": "rename"}}}
    assert frames[1]["location"]["physicalLocation"]["region"]["startLine"] == line_of("rename")


def test_without_frame_pointers_the_caller_is_still_named(trace, compiled):
    """Debian's libc keeps no frame in its wrappers; the caller comes from the words at the stack pointer."""
    t = trace([str(compiled / "nofp"), "plain"], "--stacks")
    stack = finding(t, "FS101", "/data.tmp")["stack"]
    assert stack[:2] == ["rename", frame("save_naive", "rename")]


def test_a_thread_and_a_forked_child_get_their_own_stacks(trace, compiled):
    t = trace([str(compiled / "fp"), "thread"], "--stacks")
    assert finding(t, "FS101", "/t.tmp")["stack"][:3] == ["rename", frame("save_naive", "rename"),
                                                         frame("in_thread", "thread")]
    t = trace([str(compiled / "fp"), "fork"], "--stacks")
    child = finding(t, "FS101", "/c.tmp")
    assert child["pid"] != t.report["target"]["pid"]
    assert child["stack"] == ["rename", frame("save_naive", "rename"), frame("main", "child")]


def test_attach_symbolizes_from_the_running_process(bpf, compiled, tmp_path):
    t = attach_while_running([str(compiled / "fp"), "loop"], tmp_path, "--stacks")
    assert finding(t, "FS101", "/l.tmp")["stack"] == ["rename", frame("save_naive", "rename"), frame("main", "loop")]


def test_replay_keeps_the_stacks_and_no_stacks_without_the_option(trace, compiled):
    t = trace([str(compiled / "fp"), "plain"], "--stacks")
    replay = fsaudit("report", str(t.events_path), "--format", "json", "--fail-on", "never")
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["findings"] == t.report["findings"]
    plain = trace([str(compiled / "fp"), "plain"])
    assert not any("stack" in e for e in plain.events)
    assert all(f["stack"] is None for f in plain.report["findings"])


def test_go_stack_reaches_the_programs_own_line(trace, tmp_path):
    """Go keeps frame pointers: the walk goes from the runtime's syscall up to main.main."""
    examples = Path(__file__).parent.parent / "examples"
    built = subprocess.run(["make", "-C", str(examples), "build/go/naive"], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    source = examples / "go" / "naive.go"
    line = next(n for n, text in enumerate(source.read_text().splitlines(), 1) if "os.Rename(" in text)
    t = trace([str(examples / "build" / "go" / "naive")], "--stacks", "--sarif", "report.sarif")
    stack = finding(t, "FS101", "/record.txt.tmp")["stack"]
    assert stack[0].startswith("runtime/internal/syscall.Syscall6 (")
    assert stack[-1] == f"main.main ({source}:{line})"
    sarif = json.loads((tmp_path / "report.sarif").read_text())
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "FS101")
    assert result["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": source.as_uri()},
                                                          "region": {"startLine": line}}


def test_cpython_finding_points_at_the_python_line(trace, tmp_path):
    """CPython 3.11: the interpreter's frames give way to the Python ones, as the spec's example."""
    app = tmp_path / "app.py"
    app.write_text("import os\n\n\ndef save(path, data):\n    with open(path + '.tmp', 'w') as f:\n"
                   "        f.write(data)\n    os.replace(path + '.tmp', path)\n\n\nsave('record.json', '{}')\n")
    t = trace(["/usr/bin/python3.11", str(app)], "--stacks", "--sarif", "report.sarif")
    assert finding(t, "FS101", "/record.json.tmp")["stack"] == [
        "rename", f"save ({app}:7)", f"<module> ({app}:10)"]
    assert "    at: save (app.py:7)" in t.stderr         # the summary's paths under the cwd are relative
    sarif = json.loads((tmp_path / "report.sarif").read_text())
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "FS101")
    # the script is under the source root (the directory it ran in): relative to it
    assert result["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "app.py", "uriBaseId": "%SRCROOT%"},
                                                          "region": {"startLine": 7}}


def test_node_stack_names_the_javascript_functions(trace, tmp_path):
    """Node.js: V8 keeps frame pointers, and `run --stacks` asks it for a perf map."""
    app = tmp_path / "app.js"
    app.write_text("const fs = require('fs');\n"
                   "function saveRecord(path) {\n"
                   "  fs.writeFileSync(path + '.tmp', 'record');\n"
                   "  fs.renameSync(path + '.tmp', path);\n"
                   "}\n"
                   "saveRecord('record.txt');\n")
    t = trace(["node", str(app)], "--stacks")
    stack = finding(t, "FS101", "/record.txt.tmp")["stack"]
    assert stack[0] == "rename"
    # JS:<tier marker><name> <script>:<line>:<column> of the function, from V8's perf map.
    javascript = [frame.split()[:2] for frame in stack if frame.startswith("JS:")]
    assert javascript[0][0].endswith("renameSync") and javascript[0][1].startswith("node:fs:"), stack
    assert javascript[1][0].endswith("saveRecord") and javascript[1][1].startswith(f"{app}:2:"), stack


def test_attach_to_cpython_gets_python_frames(bpf, tmp_path):
    app = tmp_path / "loop.py"
    app.write_text("import os, signal, time\n\n\ndef save():\n    with open('l.tmp', 'w') as f:\n"
                   "        f.write('x')\n    os.replace('l.tmp', 'l.txt')\n\n\n"
                   "asked = []\nsignal.signal(signal.SIGUSR1, lambda *_: asked.append(True))\n"
                   "print('ready', flush=True)\nafter = 0\nwhile True:\n    save()\n"
                   "    after += bool(asked)\n    if after == 2:   # a whole save after SIGUSR1\n"
                   "        print('done', flush=True)\n    time.sleep(0.05)\n")
    t = attach_while_running(["/usr/bin/python3.11", str(app)], tmp_path, "--stacks")
    assert finding(t, "FS101", "/l.tmp")["stack"] == ["rename", f"save ({app}:7)", f"<module> ({app}:15)"]


@pytest.mark.parametrize("code, is_call", [
    (bytes.fromhex("e8 10 20 30 40"), True),              # call rel32
    (bytes.fromhex("ff d0"), True),                       # call rax
    (bytes.fromhex("41 ff d3"), True),                    # call r11
    (bytes.fromhex("ff 15 10 20 30 40"), True),           # call [rip+disp32]
    (bytes.fromhex("ff 54 24 08"), True),                 # call [rsp+8]
    (bytes.fromhex("ff 90 10 20 30 40"), True),           # call [rax+disp32]
    (bytes.fromhex("ff 14 25 10 20 30 40"), True),        # call [disp32] through SIB
    (bytes.fromhex("48 89 c7"), False),                   # mov rdi, rax
    (bytes.fromhex("ff e0"), False),                      # jmp rax
    (bytes.fromhex("ff 50"), False),                      # call [rax+disp8] cut short
])
def test_a_return_address_follows_a_call_instruction(code, is_call):
    from fsaudit.tracing.stacks.native import follows_call

    assert follows_call(b"\x90" * 7 + code) is is_call
