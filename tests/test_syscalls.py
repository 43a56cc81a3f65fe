"""tracing/syscalls.py, the one table of syscall numbers and flags, against
the C headers of this host, name by name."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from fsaudit.tracing import syscalls

HEADERS = """#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <asm/unistd_64.h>
#include <linux/close_range.h>
#include <linux/fs.h>
"""
TABLES = ("O_FLAGS", "RWF_FLAGS", "PROT_FLAGS", "MAP_FLAGS", "MS_FLAGS", "RENAME_FLAGS", "SFR_FLAGS")


def c_values(tmp_path, expressions: list[str]) -> list[int]:
    program = tmp_path / "values.c"
    program.write_text(HEADERS + "int main(void) {\n" + "".join(
        f'    printf("%lld\\n", (long long)({expression}));\n' for expression in expressions) + "    return 0;\n}\n")
    subprocess.run(["cc", "-o", tmp_path / "values", program], check=True)
    return [int(line) for line in subprocess.run([tmp_path / "values"], capture_output=True, text=True,
                                                 check=True).stdout.split()]


@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler")
def test_every_constant_and_flag_name_has_the_headers_value(tmp_path):
    named = {name: value for name, value in vars(syscalls).items()
             if name.isupper() and isinstance(value, int) and not isinstance(value, bool)}
    for table in TABLES:
        named.update((name, bit) for bit, name in getattr(syscalls, table))
    named.update((name, mode) for mode, name in syscalls.ACCMODES.items())
    assert len(named) > 40
    assert dict(zip(named, c_values(tmp_path, list(named)))) == named


@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler")
def test_syscall_numbers_are_the_kernel_s(tmp_path):
    names = list(syscalls.SYSCALLS.values())
    assert dict(zip(c_values(tmp_path, [f"__NR_{name}" for name in names]), names)) == syscalls.SYSCALLS
