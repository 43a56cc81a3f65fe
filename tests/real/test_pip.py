"""`pip install` (pip 23.0.1 in a fresh venv) of a local wheel, no index, its stdout redirected to a file.

Setup, untraced: a venv (`python3 -m venv`), and a wheel of a one-module
project built by Debian's pip (`pip wheel --no-deps --no-build-isolation
--no-index`). Traced: `v/bin/pip install --no-index --no-deps WHEEL > pip.log`.

Ground truth
------------

`strace -f -y` (S = W/v/lib/python3.11/site-packages):

    openat(AT_FDCWD, "S/tinypkg/__init__.py", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 4
    write(4<S/tinypkg/__init__.py>, "VALUE = 1\\n", 10) = 10
    ...
    openat(AT_FDCWD, "S/tinypkg-1.0.dist-info/INSTALLER....tmp", O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600) = 4
    write(4<...INSTALLER....tmp>, "pip\\n", 4) = 4
    fsync(4<...INSTALLER....tmp>) = 0
    rename("S/tinypkg-1.0.dist-info/INSTALLER....tmp", "S/tinypkg-1.0.dist-info/INSTALLER") = 0
    (the same for direct_url.json and RECORD)
    write(1<W/pip.log>, "Processing ./wheels/tinypkg-1.0-py3-none-any.whl\\n", ...)

As for the venv (test_venv.py): FS102 on the .dist-info files pip fsyncs
and replaces is TRUE (adjacent_tmp_file() "is ensured to be written to
disk", the directory never is); the unpacked module and metadata (FS105)
are NOISE; byte-code (FS101/FS102 in __pycache__) is NOISE and never above
info. pip.log is the command's stdout, a redirect made by its caller: its
durability is the caller's (rules.md role *stdio*), out of scope by default,
so FS105 on it is NOISE that must not be printed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .realcase import NOISE, TRUE, Case, Truth, parametrize

WHEEL = "wheels/tinypkg-1.0-py3-none-any.whl"


def prepare(work: Path) -> None:
    project = work / "project"
    (project / "tinypkg").mkdir(parents=True)
    (project / "tinypkg" / "__init__.py").write_text("VALUE = 1\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "tinypkg"\nversion = "1.0"\n')
    (work / "home").mkdir()
    for argv in (["/usr/bin/python3", "-m", "venv", "v"],
                 ["/usr/bin/python3", "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                  "--disable-pip-version-check", "-w", "wheels", "./project"]):
        subprocess.run(argv, cwd=work, check=True, capture_output=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(work / "home"), "PIP_CONFIG_FILE": "/dev/null"})


CASES = [
    Case("pip-install-wheel", "pip install of a local wheel into a venv, stdout to pip.log", ("python3",),
         lambda work: ["v/bin/pip", "install", "--no-index", "--no-deps", WHEEL], [
             Truth("FS10[12]", "*/__pycache__/*", NOISE, "byte-code caches, regenerated on import", expect="info"),
             Truth("FS102", "v/lib/python3*/site-packages/tinypkg-1.0.dist-info/*", TRUE,
                   "pip fsyncs INSTALLER, direct_url.json and RECORD, replaces them, never fsyncs the directory",
                   by="python3"),
             Truth("FS105", "pip.log", NOISE, "the command's stdout, redirected by its caller (role stdio)",
                   expect="absent"),
             Truth("FS105", "v/*", NOISE, "pip never fsyncs the files it unpacks"),
         ], setup=prepare, stdout="pip.log", env={"HOME": "{work}/home", "PIP_CONFIG_FILE": "/dev/null"},
         ),
]


@parametrize(CASES)
def test_ground_truth(traced, case, check):
    check.run(traced(case))
