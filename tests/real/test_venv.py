"""`python3 -m venv` (Debian's Python 3.11; ensurepip installs the bundled pip 23.0.1 and setuptools 66).

Ground truth
------------

`strace -f -y` (W is the work directory, S = W/v/lib/python3.11/site-packages):

    openat(AT_FDCWD, "W/v/pyvenv.cfg", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3
    write(3<W/v/pyvenv.cfg>, "home = /usr/bin\\ninclude-system-site-packages = false\\nversion"..., 151) = 151
    ...  (ensurepip runs pip in a child: every file of the two wheels is written, none is fsynced)
    openat(AT_FDCWD, "S/pip/__pycache__/__init__.cpython-311.pyc.140366838090752", O_WRONLY|O_CREAT|O_EXCL, 0644) = 4
    write(4<...>, ..., 758) = 758
    rename("S/pip/__pycache__/__init__.cpython-311.pyc.140366838090752", "S/pip/__pycache__/__init__.cpython-311.pyc") = 0
    ...
    openat(AT_FDCWD, "S/pip-23.0.1.dist-info/INSTALLERedlmsbxw.tmp", O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600) = 4
    write(4<S/pip-23.0.1.dist-info/INSTALLERedlmsbxw.tmp>, "pip\\n", 4) = 4
    fsync(4<S/pip-23.0.1.dist-info/INSTALLERedlmsbxw.tmp>) = 0
    rename("S/pip-23.0.1.dist-info/INSTALLERedlmsbxw.tmp", "S/pip-23.0.1.dist-info/INSTALLER") = 0

Byte-code files are written by importlib's _write_atomic (temp name, write,
replace, no fsync): regenerable caches by design (PEP 3147; rules.md role
*cache*: `__pycache__/`, `*.pyc`). FS101/FS102 on them are NOISE and must
not be above info: they are most of the ~1,500 findings the issue counts.

pip writes INSTALLER and RECORD through adjacent_tmp_file(), whose docstring
says the file "is ensured to be written to disk after the context reaches
its end" (flush + os.fsync), then os.replace()s it, and never fsyncs the
.dist-info directory (src/pip/_internal/utils/filesystem.py and
operations/install/wheel.py, pip 23.0.1). pip's own intent is defeated by the
missing directory fsync: FS102 on *.dist-info/* is TRUE. Every other file
pip unpacks, and venv's scripts and pyvenv.cfg, are never fsynced, like
tar's or cp's output: FS105 on them is NOISE (info; a venv is rebuilt, not
recovered).
"""

from __future__ import annotations

from .realcase import NOISE, TRUE, Case, Truth, parametrize

CASES = [
    Case("python-venv", "python3 -m venv (ensurepip: pip, setuptools)", ("python3",),
         lambda work: ["python3", "-m", "venv", "v"], [
             Truth("FS10[12]", "*/__pycache__/*", NOISE, "byte-code caches, regenerated on import", expect="info"),
             Truth("FS102", "v/lib/python3*/site-packages/*.dist-info/*", TRUE,
                   "pip fsyncs INSTALLER and RECORD, then replaces them, and never fsyncs the directory",
                   by="python3"),
             Truth("FS105", "v/*", NOISE, "pip and venv never fsync the files they unpack or write"),
         ], env={"HOME": "{work}"}),
]


@parametrize(CASES)
def test_ground_truth(traced, case, check):
    check.run(traced(case))
