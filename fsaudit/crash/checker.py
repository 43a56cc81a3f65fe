"""A crash state on disk, and the user's check run on it: in a private mount
namespace where the state is mounted at the scope's absolute path, under a
timeout, with STATE_DIR and ACKED_FILE as its last arguments."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

from .models import State

OUTPUT_LIMIT = 4000     # characters of the checker's output kept for the report


@dataclass
class Verdict:
    ok: bool
    exit: int | None         # None: it timed out
    output: str


def materialise(state: State, initial: str, where: str) -> None:
    """Write the state's files under where (created). Files the workload left as
    they were in the initial copy are copied from it; the others are written."""
    os.makedirs(where)
    for path, content in sorted(state.files.items()):
        target = os.path.join(where, path)
        if content is None:
            os.makedirs(target, exist_ok=True)
            continue
        source = os.path.join(initial, path)
        if unchanged(source, content):
            shutil.copy2(source, target)     # copy_file_range: shares blocks where the filesystem can
        else:
            with open(target, "wb") as f:
                f.write(content)


def unchanged(source: str, content: bytes) -> bool:
    try:
        if os.path.getsize(source) != len(content):
            return False
        with open(source, "rb") as f:
            return f.read() == content
    except OSError:
        return False


def in_namespace(mounts: list[tuple[str, str]], command: list[str]) -> list[str]:
    """argv running command in a private mount namespace with each (source, scope) bind-mounted:
    nothing outside the namespace sees the state at the scopes. A failed mount exits 125."""
    script = 'while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 125; shift 2; done; shift; exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
            *(path for mount in mounts for path in mount), "--", *command]


def run_checker(checker: list[str], work: str, mounts: list[tuple[str, str]], acked_file: str, env: dict,
                timeout: float) -> Verdict:
    """checker on work, a throwaway state (recovery may write to it), mounted at the scopes."""
    argv = in_namespace(mounts, [*checker, work, acked_file])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **env}, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = None
    text = out.decode(errors="replace")[-OUTPUT_LIMIT:]
    if code is None:
        text += f"\n(timed out after {timeout:g} s)"
    return Verdict(code == 0, code, text)
