"""--inject under the real tracer: calls fail without running, the failure is in
the event stream in order, and the error rules (FS201-FS204) judge how the
program coped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import PROGRAMS, ROOT, fsaudit
from fsaudit.tracing.inject import PATH_ARGS, InjectionError, parse_injection
from fsaudit.tracing.syscalls import SYSCALLS

ERROR_RULES = {"FS201", "FS202", "FS203", "FS204"}


def error_rules(traced) -> list[str]:
    return [code for code in traced.rules() if code in ERROR_RULES]


def data_events(traced, name="data.txt") -> list[dict]:
    return [e for e in traced.events if (e.get("path") or "").endswith(name)]


@pytest.mark.parametrize("mode, spec, expected", [
    ("retry", "fsync=EIO@1", ["FS201"]),
    ("swallow", "fsync=EIO@1", ["FS202"]),
    ("abort", "fsync=EIO@1", []),
    ("short", "write=ENOSPC@2:path=*/data.txt", ["FS203"]),
    ("close", "close=EIO:path=*/data.txt", ["FS204"]),
])
def test_c_program_coping_with_an_injected_failure(trace, build, mode, spec, expected):
    traced = trace([str(build("faults")), mode], "--inject", spec)
    assert error_rules(traced) == expected, traced.stderr
    injected = [e for e in traced.events if e.get("injected")]
    assert len(injected) == 1 and injected[0]["injection"] == spec
    assert injected[0]["path"].endswith("/data.txt")
    assert traced.report["target"]["injections"][0]["fired"] == 1
    assert traced.returncode == (1 if mode == "abort" else 0)


def test_failed_call_is_ordered_between_the_writes_around_it(trace, build):
    traced = trace([str(build("faults")), "swallow"], "--inject", "fsync=EIO@1")
    sequence = [(e["syscall"], e.get("bytes"), e["ret"]) for e in data_events(traced)
                if e["syscall"] in ("write", "fsync")]
    # The failed fsync never reached the kernel's write-run folding: the two
    # writes stay apart, one on each side of it.
    assert sequence == [("write", 9, 9), ("fsync", None, "EIO"), ("write", 9, 9)]


def test_injected_close_leaves_the_fd_open(trace, build):
    traced = trace([str(build("faults")), "close"], "--inject", "close=EIO:path=*/data.txt")
    close = next(e for e in data_events(traced) if e["syscall"] == "close")
    assert close["ret"] == "EIO" and close["injected"] is True
    finding = next(f for f in traced.report["findings"] if f["rule"] == "FS204")
    assert finding["path"].endswith("/data.txt")


def test_nth_call_counts_across_the_process_tree(trace, build):
    traced = trace([str(build("faults")), "child"], "--inject", "fsync=EIO@2")
    fsyncs = [e for e in data_events(traced) if e["syscall"] == "fsync"]
    assert [e["ret"] for e in fsyncs] == [0, "EIO"]
    parent = traced.report["target"]["pid"]
    assert fsyncs[0]["pid"] == parent and fsyncs[1]["pid"] != parent
    finding = next(f for f in traced.report["findings"] if f["rule"] == "FS202")
    assert finding["pid"] == fsyncs[1]["pid"]


def test_path_filter_fails_only_matching_files(trace, build):
    traced = trace([str(build("faults")), "two-files"], "--inject", "fsync=EIO:path=*.wal")
    fsyncs = {e["path"].rsplit("/", 1)[1]: e for e in traced.events if e["syscall"] == "fsync"}
    assert fsyncs["data.txt"]["ret"] == 0 and "injected" not in fsyncs["data.txt"]
    assert fsyncs["journal.wal"]["ret"] == "EIO" and fsyncs["journal.wal"]["injected"] is True
    assert error_rules(traced) == [] and traced.returncode == 1


def test_injection_that_never_fires_is_reported(trace, build):
    traced = trace([str(build("faults")), "no-sync"], "--inject", "fsync=EIO@1")
    assert not [e for e in traced.events if e.get("injected")]
    assert error_rules(traced) == []
    assert traced.report["target"]["injections"] == [
        {"spec": "fsync=EIO@1", "syscall": "fsync", "errno": "EIO", "nth": 1, "onward": False,
         "path": None, "fired": 0}]
    assert "injection fsync=EIO@1: never fired" in traced.stderr


@pytest.mark.parametrize("mode, expected, status", [
    ("retry", ["FS201"], 0),
    ("swallow", ["FS202"], 0),
    ("raise", [], 1),
])
def test_python_program_coping_with_an_injected_fsync_failure(trace, mode, expected, status):
    traced = trace([sys.executable, str(PROGRAMS / "pyfaults.py"), mode], "--inject", "fsync=EIO@1")
    assert error_rules(traced) == expected, traced.stderr
    assert traced.returncode == status
    assert [e["ret"] for e in data_events(traced) if e["syscall"] == "fsync"][0] == "EIO"


def test_replay_of_an_injected_run_gives_the_same_report(trace, build, tmp_path):
    traced = trace([str(build("faults")), "retry"], "--inject", "fsync=EIO@1")
    replayed = tmp_path / "replayed.json"
    result = fsaudit("report", "--fail-on", "never", "--json", str(replayed), str(traced.events_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(replayed.read_text())
    assert [f["rule"] for f in report["findings"]] == [f["rule"] for f in traced.report["findings"]]
    assert report["target"]["injections"] == traced.report["target"]["injections"]


@pytest.mark.parametrize("spec, complaint", [
    ("fsync=EWHAT", "unknown errno 'EWHAT'"),
    ("frobnicate=EIO", "unknown or untraced syscall 'frobnicate'"),
    ("fsync=EIO@0", "@N needs a call number >= 1"),
    ("fsync", "expected SYSCALL=ERRNO"),
    ("fsync=EIO:size=3", "the only option is :path=GLOB"),
])
def test_bad_injection_is_a_usage_error(spec, complaint):
    result = fsaudit("run", "--inject", spec, "--", "true")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and complaint in result.stderr


def test_injection_counting():
    every, third, onward = (parse_injection(s) for s in ("write=ENOSPC", "write=ENOSPC@3", "write=ENOSPC@3+"))
    assert [every.fires_on(n) for n in (1, 2, 3, 4)] == [True, True, True, True]
    assert [third.fires_on(n) for n in (1, 2, 3, 4)] == [False, False, True, False]
    assert [onward.fires_on(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    with pytest.raises(InjectionError):
        parse_injection("fork=EAGAIN")


def test_path_taking_calls_are_read_from_the_callers_memory(trace, tmp_path):
    program = ("import os\n"
               "open('a.tmp', 'w').close()\n"
               "for call in (lambda: os.rename('a.tmp', 'a'), lambda: open('secret.txt', 'w')):\n"
               "    try:\n"
               "        call()\n"
               "    except OSError as exc:\n"
               "        print(exc.errno)\n")
    traced = trace([sys.executable, "-c", program], "--inject", "rename=EXDEV",
                   "--inject", "openat=EACCES:path=*/secret.txt")
    assert traced.stdout.split()[:2] == ["18", "13"]          # EXDEV, EACCES seen by the program
    rename = traced.of("rename")[0]
    assert (rename["ret"], rename["path"], rename["path2"]) == ("EXDEV", str(tmp_path / "a.tmp"), str(tmp_path / "a"))
    assert (tmp_path / "a.tmp").exists() and not (tmp_path / "a").exists()   # the rename never ran
    opens = [e for e in traced.of("openat") if e["path"] == str(tmp_path / "secret.txt")]
    assert [(e["ret"], e.get("injected")) for e in opens] == [("EACCES", True)]
    assert [i["fired"] for i in traced.report["target"]["injections"]] == [1, 1]


@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler")
def test_path_args_are_the_probe_s(tmp_path):
    """PATH_ARGS says what the probe's path_args() says, syscall by syscall:
    the function compiled as it is in probes/fsaudit.c, asked for every
    traced syscall (its 0xf and 0xff: no such argument)."""
    source = (ROOT / "fsaudit" / "tracing" / "probes" / "fsaudit.c").read_text()
    function = re.search(r"^static __always_inline int path_args\(s64 nr\) \{$.*?^\}$", source, re.M | re.S)
    names = list(SYSCALLS.values())
    program = tmp_path / "path_args.c"
    calls = "".join(f'    printf("%d\\n", path_args(__NR_{name}));\n' for name in names)
    program.write_text("#include <stdio.h>\n#include <asm/unistd_64.h>\ntypedef long long s64;\n"
                       f"{function.group(0)}\nint main(void) {{\n{calls}    return 0;\n}}\n")
    subprocess.run(["cc", "-o", tmp_path / "path_args", program], check=True)
    out = subprocess.run([tmp_path / "path_args"], capture_output=True, text=True, check=True).stdout.split()
    probe = {name: tuple(i if i < 6 else None for i in (int(pa) >> 4, int(pa) & 0xF)) for name, pa in zip(names, out)}
    assert {name: args for name, args in probe.items() if args != (None, None)} == PATH_ARGS
