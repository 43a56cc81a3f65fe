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
    they were in the initial copy are copied from it (cp --reflink=auto, where
    the filesystem can share their blocks); the others are written."""
    os.makedirs(where)
    for path, content in sorted(state.files.items()):
        target = os.path.join(where, path)
        if content is None:
            os.makedirs(target, exist_ok=True)
            continue
        source = os.path.join(initial, path)
        if os.path.isfile(source) and os.path.getsize(source) == len(content) and open(source, "rb").read() == content:
            subprocess.run(["cp", "--reflink=auto", "-p", source, target], check=True)
        else:
            with open(target, "wb") as f:
                f.write(content)


def run_checker(checker: list[str], state_dir: str, scope: str, acked: bytes, env: dict, timeout: float) -> Verdict:
    """checker on a throwaway copy of state_dir, mounted at scope."""
    work = state_dir + ".run"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", state_dir, work], check=True)
    acked_file = state_dir + ".acked"
    with open(acked_file, "wb") as f:
        f.write(acked)
    # The mount is private to the checker's namespace: nothing outside sees the state at scope.
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", work, scope,
            *checker, work, acked_file]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **env}, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = None
    shutil.rmtree(work, ignore_errors=True)
    text = out.decode(errors="replace")[-OUTPUT_LIMIT:]
    if code is None:
        text += f"\n(timed out after {timeout:g} s)"
    return Verdict(code == 0, code, text)
