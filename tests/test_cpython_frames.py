"""--stacks, Python frames: fsaudit/tracing/probes/cpython.h and fsaudit/tracing/stacks/cpython.py.

The kernel part runs for real (`fsaudit run --stacks`) on a Python 3.11
program whose every fsync, fdatasync and rename has a known stack, written
out by hand below. The location table
decoder is checked against CPython's own co_positions() on thousands of code
objects, and the header's struct offsets against the installed C headers.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import types
from pathlib import Path

import pytest

from conftest import ROOT

from fsaudit.tracing.stacks import cpython
from fsaudit.tracing.stacks.cpython import PY_FILE_MAX, PyCodes, addr2line
from fsaudit.tracing.record import EV_PYCODE, PATH_LEN, Record

PYTHON311 = "/usr/bin/python3.11"
HEADER = ROOT / "fsaudit" / "tracing" / "probes" / "cpython.h"

# Every sampled syscall of this program (fsync, fdatasync, rename) has a
# stack the test knows: `# @name` marks the line a frame must show. The 8
# frames of the unicode chain fill PY_FRAMES exactly; long_function's
# location table needs the extra EV_PYCODE events (> 2 * 256 bytes).
APP = '''\
import os
import sys
import threading


def sync(fd):
    os.fsync(fd)  # @sync


def save(path, data):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    sync(fd)  # @save-sync
    os.close(fd)
    os.replace(tmp, path)  # @save-replace


def level1(path):
    save(path, b"one")  # @level1


class Store:
    def __init__(self, path):
        self.path = path

    def put(self, data):
        save(self.path, data)  # @put


def chunks(path):
    for i in range(2):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.fdatasync(fd)  # @chunks
        os.close(fd)
        yield i


def écrire(path):
    level1(path)  # @ecrire


def 写入(path):
    écrire(path)  # @xieru


def 𠀋(path):
    写入(path)  # @ucs4


def long_function(path):
    x = 0
{padding}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.fsync(fd)  # @long
    os.close(fd)
    return x


def worker(path):
    level1(path)  # @worker


def main(d):
    level1(d + "/a")  # @main-level1
    Store(d + "/b").put(b"two")  # @main-put
    for _ in chunks(d + "/c"):  # @main-chunks
        pass
    𠀋(d + "/u")  # @main-unicode
    long_function(d + "/l")  # @main-long
    t = threading.Thread(target=worker, args=(d + "/t",))
    t.start()
    t.join()
    pid = os.fork()
    if pid == 0:
        level1(d + "/child")  # @child
        os._exit(0)
    os.waitpid(pid, 0)


main(sys.argv[1])  # @module
'''.replace("{padding}", "\n".join(f"    x += {i}" for i in range(150)))


def expected_stacks(path: str) -> list[tuple[str, str, list[str]]]:
    """(process, syscall, frames) per sampled syscall, in order; process is
    main, thread or child. Thread frames below worker are threading's own."""
    line = {m.group(1): n for n, text in enumerate(APP.splitlines(), 1) for m in re.finditer(r"# @(\S+)", text)}

    def at(name: str, mark: str) -> str:
        return f"{name} ({path}:{line[mark]})"

    module = at("<module>", "module")
    sync_save = [at("sync", "sync"), at("save", "save-sync")]
    replace = [at("save", "save-replace")]
    unicode = [at("level1", "level1"), at("écrire", "ecrire"), at("写入", "xieru"), at("𠀋", "ucs4"),
               at("main", "main-unicode"), module]
    thread = [at("level1", "level1"), at("worker", "worker")]
    child = [at("level1", "level1"), at("main", "child"), module]
    return [
        ("main", "fsync", sync_save + [at("level1", "level1"), at("main", "main-level1"), module]),
        ("main", "rename", replace + [at("level1", "level1"), at("main", "main-level1"), module]),
        ("main", "fsync", sync_save + [at("Store.put", "put"), at("main", "main-put"), module]),
        ("main", "rename", replace + [at("Store.put", "put"), at("main", "main-put"), module]),
        ("main", "fdatasync", [at("chunks", "chunks"), at("main", "main-chunks"), module]),
        ("main", "fdatasync", [at("chunks", "chunks"), at("main", "main-chunks"), module]),
        ("main", "fsync", (sync_save + unicode)[:8]),
        ("main", "rename", replace + unicode),
        ("main", "fsync", [at("long_function", "long"), at("main", "main-long"), module]),
        ("thread", "fsync", sync_save + thread),
        ("thread", "rename", replace + thread),
        ("child", "fsync", sync_save + child),
        ("child", "rename", replace + child),
    ]


@pytest.fixture(scope="module")
def system_python():
    if cpython.image_facts(PYTHON311) is None:   # make setup's bcc comes with Debian's python3.11
        pytest.fail(f"{PYTHON311} is not a CPython 3.11 with libpython linked in")


SAMPLED = ("fsync", "fdatasync", "rename")


def test_frames_of_a_real_program(system_python, trace, tmp_path):
    app = tmp_path / "dätä" / "app.py"
    app.parent.mkdir()
    app.write_text(APP, encoding="utf-8")
    t = trace([PYTHON311, str(app), str(tmp_path)], "--stacks")
    assert t.returncode == 0, t.stderr
    assert t.report["counts"]["lost_events"] == 0
    main_pid = t.report["target"]["pid"]
    got = []
    for event in t.events:
        if event["syscall"] not in SAMPLED or not event.get("path", "").startswith(f"{tmp_path}/"):
            continue
        who = "main" if event["tid"] == main_pid else "thread" if event["pid"] == main_pid else "child"
        native, *frames = event["stack"]      # libc's wrapper, then the Python frames
        assert native == event["syscall"]
        if who == "thread":   # then Thread.run, _bootstrap_inner, _bootstrap in threading.py
            assert [f.split(" (")[0] for f in frames[len(frames) - 3:]] == [
                "Thread.run", "Thread._bootstrap_inner", "Thread._bootstrap"]
            assert all(re.fullmatch(r".* \(/usr/lib/python3\.11/threading\.py:\d+\)", f) for f in frames[-3:])
            frames = frames[:-3]
        got.append((who, event["syscall"], frames))
    assert got == expected_stacks(str(app))


def test_the_long_location_table_takes_extra_events():
    code = compile(APP, "app.py", "exec")
    long_function = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == "long_function")
    assert 2 * 256 < len(long_function.co_linetable) <= 256 + 3 * 512


def test_header_offsets_match_the_installed_python_headers(tmp_path):
    """Every PY311_* offset is the offsetof/sizeof expression in its comment,
    and the str state masks are the bit-fields' positions."""
    include = Path("/usr/include/python3.11")
    if not (include / "internal" / "pycore_frame.h").exists() or not shutil.which("cc"):
        pytest.skip("no CPython 3.11 internal headers or no C compiler")
    defines = re.findall(r"#define (PY311_\w+)\s+(\d+)\s+// ((?:offsetof|sizeof)\(.*\))", HEADER.read_text())
    assert len(defines) > 20
    checks = "\n".join(f'    printf("{name} %zu\\n", (size_t){expr});' for name, _, expr in defines)
    source = tmp_path / "offsets.c"
    source.write_text(f"""#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include "internal/pycore_frame.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"
#define STATE_BITS(field) ({{ PyASCIIObject a = {{0}}; a.state.field = ~0u; *(unsigned *)&a.state; }})
int main(void) {{
{checks}
    printf("kind %u compact %u ascii %u\\n", STATE_BITS(kind), STATE_BITS(compact), STATE_BITS(ascii));
    return 0;
}}
""")
    exe = tmp_path / "offsets"
    subprocess.run(["cc", "-w", f"-I{include}", "-o", str(exe), str(source)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split() for line in out[:-1]] == [[name, value] for name, value, _ in defines]
    assert out[-1] == f"kind {7 << 2} compact {0x20} ascii {0x40}"


@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler")
def test_cpython_py_has_the_constants_of_the_header(tmp_path):
    """Each PY_* constant of stacks/cpython.py is the #define of its name in
    probes/cpython.h, BUILD_ID_LEN is struct py_build_id's size, and the auxv
    and note types are <elf.h>'s: the header's defines and struct compiled."""
    text = HEADER.read_text()
    defines = "\n".join(re.findall(r"^#define .*$", text, re.M))
    build_id = re.search(r"^struct py_build_id \{$.*?^\};$", text, re.M | re.S).group(0)
    names = sorted(name for name, value in vars(cpython).items() if name.startswith("PY_") and isinstance(value, int))
    assert {"PY_LAYOUT_311", "PY_LAYOUT_PENDING", "PY_FILE_MAX", "PY_QUAL_MAX"} <= set(names)
    expressions = {**{name: name for name in names}, "BUILD_ID_LEN": "sizeof(struct py_build_id)",
                   "AT_PHDR": "AT_PHDR", "AT_PHNUM": "AT_PHNUM", "NT_GNU_BUILD_ID": "NT_GNU_BUILD_ID"}
    prints = "".join(f'    printf("%lld\\n", (long long)({expression}));\n' for expression in expressions.values())
    source = tmp_path / "constants.c"
    source.write_text(f"#include <elf.h>\n#include <stdio.h>\ntypedef unsigned char u8;\n{defines}\n{build_id}\n"
                      f"int main(void) {{\n{prints}    return 0;\n}}\n")
    subprocess.run(["cc", "-o", tmp_path / "constants", source], check=True)
    out = subprocess.run([tmp_path / "constants"], capture_output=True, text=True, check=True).stdout.split()
    assert {name: getattr(cpython, name) for name in expressions} == dict(zip(expressions, map(int, out)))


@functools.cache
def _code_objects(limit: int = 4000) -> tuple[types.CodeType, ...]:
    """Code objects of the standard library's modules, compiled here."""
    codes: list[types.CodeType] = []
    stdlib = Path(os.__file__).parent
    for path in sorted(stdlib.glob("*.py")):
        try:
            stack = [compile(path.read_text(encoding="utf-8"), str(path), "exec")]
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        while stack:
            code = stack.pop()
            codes.append(code)
            stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        if len(codes) >= limit:
            break
    return tuple(codes)


def _units(code: types.CodeType, most: int = 100) -> range:
    """Code unit indexes to check: all, or evenly spread ones and the last
    (each lookup decodes from the table's start)."""
    count = len(code.co_code) // 2
    return range(0, count, max(1, count // most))


def test_location_table_decoder_matches_co_positions():
    codes = _code_objects()
    assert len(codes) >= 4000
    for code in codes:
        lines = [position[0] for position in code.co_positions()]
        units = [*_units(code), len(lines) - 1]
        assert [addr2line(code.co_linetable, code.co_firstlineno, i) for i in units] == [lines[i] for i in units], \
            code.co_qualname
        assert addr2line(code.co_linetable, code.co_firstlineno, -1) == code.co_firstlineno


def test_truncated_location_table_gives_the_lines_it_covers():
    codes = [c for c in _code_objects() if len(c.co_linetable) > 256][:300]
    assert codes
    for code in codes:
        lines = [position[0] for position in code.co_positions()]
        head = code.co_linetable[:256]
        got = [addr2line(head, code.co_firstlineno, i) for i in _units(code)]
        assert all(g is None or g == lines[i] for g, i in zip(got, _units(code)))
        # Entries start with bit 7 set; all but the last one in the head are whole.
        starts = [i for i, byte in enumerate(head) if byte & 0x80]
        whole = sum((head[i] & 7) + 1 for i in starts[:-1])
        assert whole > 0
        assert [addr2line(head, code.co_firstlineno, i) for i in range(whole)] == lines[:whole]


def record(code: int, *, ret: int = 0, firstlineno: int = 0, filename: str = "", qualname: str = "",
           kinds: tuple[int, int] = (1, 1), table: bytes = b"", space: int = 7) -> Record:
    """An EV_PYCODE raw record, laid out as probes/cpython.h fills it."""
    fixed = dict(ts=0, ts_first=0, pid=1, tid=1, nr=EV_PYCODE, epoch=0, ret=ret, arg0=code, arg5=space)
    if ret:   # a line table chunk: its bytes in path and path2
        data = table.ljust(2 * PATH_LEN, b"\0")
        return Record(**fixed, arg1=0, arg2=len(table), arg3=0, arg4=0, path=data[:PATH_LEN], path2=data[PATH_LEN:])
    codecs = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}
    file_bytes, qual_bytes = filename.encode(codecs[kinds[0]]), qualname.encode(codecs[kinds[1]])
    file_shipped = file_bytes[-PY_FILE_MAX:]
    path = (file_shipped + b"\0" + qual_bytes[:cpython.PY_QUAL_MAX]).ljust(PATH_LEN, b"\0")
    return Record(**fixed, arg1=firstlineno, arg2=min(len(table), PATH_LEN), arg3=len(filename) << 8 | kinds[0],
                  arg4=len(qualname) << 8 | kinds[1], path=path, path2=table[:PATH_LEN].ljust(PATH_LEN, b"\0"))


def table_of(code: types.CodeType) -> dict:
    return {"firstlineno": code.co_firstlineno, "table": code.co_linetable}


def test_pycodes_names_lines_and_truncation():
    def f():
        x = 1
        return x

    codes = PyCodes()
    long_dir = "/" + "d" * 200
    codes.add(10, record(0x100, filename="/app/ünï.py", qualname="Ωmega.写入", kinds=(1, 2),
                         **table_of(f.__code__)))
    codes.add(10, record(0x200, filename=long_dir + "/app.py", qualname="q" * 100, kinds=(1, 1),
                         firstlineno=3, table=b""))
    codes.add(10, record(0x300, filename="/𠀋.py", qualname="𠀋", kinds=(4, 4), firstlineno=9, table=b""))
    # lasti of `return x` is where co_positions says that line is.
    lasti = next(i for i, p in enumerate(f.__code__.co_positions()) if p[0] == f.__code__.co_firstlineno + 2)
    frames = codes.frames(10, [0x100, 0x200, 0x300, 0x400, 0, 0x100], [lasti, 5, 2**32 - 1, 0, 0, 0])
    assert frames == [
        f"Ωmega.写入 (/app/ünï.py:{f.__code__.co_firstlineno + 2})",
        f"{'q' * 76}... (...{(long_dir + '/app.py')[-PY_FILE_MAX:]}:3)",   # no table: the first line
        "𠀋 (/𠀋.py:9)",
        "? (unknown code)",
    ]


def test_pycodes_line_table_chunks_and_reuse():
    code = compile(APP, "app.py", "exec")
    long_function = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == "long_function")
    table = long_function.co_linetable
    positions = [p[0] for p in long_function.co_positions()]
    last = len(positions) - 1   # deep in the table: needs every chunk
    codes = PyCodes()
    codes.add(1, record(0x100, filename="app.py", qualname="long_function", **table_of(long_function)))
    assert codes.frames(1, [0x100], [last]) == [f"long_function (app.py:{long_function.co_firstlineno})"]
    for offset in range(256, len(table), 512):
        codes.add(1, record(0x100, ret=offset, table=table[offset:offset + 512]))
    assert codes.frames(1, [0x100], [last]) == [f"long_function (app.py:{positions[last]})"]
    # A freed code object's address reused: the new one replaces it.
    codes.add(1, record(0x100, filename="other.py", qualname="g", firstlineno=4))
    assert codes.frames(1, [0x100], [0]) == ["g (other.py:4)"]


def test_pycodes_fork_children_share_their_parents_code_objects():
    codes = PyCodes()
    codes.add(1, record(0x100, filename="a.py", qualname="f", firstlineno=2, space=7))
    codes.fork(1, 2)
    codes.add(2, record(0x200, filename="a.py", qualname="g", firstlineno=5, space=7))   # shipped by the child
    assert codes.frames(2, [0x200, 0x100], [-1, -1]) == ["g (a.py:5)", "f (a.py:2)"]
    assert codes.frames(1, [0x200], [-1]) == ["g (a.py:5)"]
    codes.forget(1)
    assert codes.frames(2, [0x100], [-1]) == ["f (a.py:2)"]
    codes.forget(2)
    assert codes.frames(2, [0x100], [-1]) == ["? (unknown code)"]


def test_image_facts_of_the_system_python():
    if not os.path.exists(PYTHON311):
        pytest.skip(f"no {PYTHON311}")
    facts = cpython.image_facts(PYTHON311)
    if facts is None:
        pytest.skip(f"{PYTHON311} keeps _PyRuntime in libpython")
    out = subprocess.run(["readelf", "-n", "--dyn-syms", "-W", PYTHON311], capture_output=True, text=True).stdout
    build_id = re.search(r"Build ID: ([0-9a-f]+)", out).group(1)
    runtime = re.search(r"([0-9a-f]{16}) +\S+ +OBJECT +GLOBAL +DEFAULT +\d+ _PyRuntime$", out, re.MULTILINE).group(1)
    assert facts == (bytes.fromhex(build_id)[:20].ljust(20, b"\0"), int(runtime, 16))
    assert cpython.image_facts(os.path.realpath("/bin/sh")) is None      # an ELF, not Python
    assert cpython.image_facts(__file__) is None                        # not an ELF
