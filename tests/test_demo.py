"""The README's --stacks example is what the demo, built by its own Makefile, really says."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from conftest import fsaudit

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_built_by_its_makefile_names_the_source_line_the_readme_quotes(bpf, tmp_path):
    quoted = re.search(r"`run --stacks` / `attach --stacks`.*?`(at: [^`]+)`", (ROOT / "README.md").read_text(),
                       re.DOTALL).group(1)
    for name in ("Makefile", "save_naive.c"):
        shutil.copy(ROOT / "examples" / "demo" / name, tmp_path)
    subprocess.run(["make", "-s", "-C", str(tmp_path)], check=True)
    result = fsaudit("run", "--no-live", "--stacks", "--fail-on", "never", "--", "./save_naive", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fs101 = result.stderr[result.stderr.index("FS101"):]
    assert fs101.splitlines()[1].strip() == quoted, result.stderr
