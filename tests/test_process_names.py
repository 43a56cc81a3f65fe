"""Which program a finding names, and what processes[] says, on real programs under
the real tracer: the image that made the triggering call at the time of the call,
argv captured at each exec (however soon the program exits), one entry per exec,
and exe and argv for the processes `attach` finds."""

from __future__ import annotations

import sys

from conftest import attach_while_running

PYTHON3 = "/usr/bin/python3"
RENAME_UNSYNCED = "open('a.tmp', 'w').write('data'); import os; os.rename('a.tmp', 'a')"


def fs101(t) -> dict:
    (finding,) = [f for f in t.report["findings"] if f["rule"] == "FS101"]
    return finding


def test_a_finding_names_the_program_exec_d_by_the_shell(trace, tmp_path):
    """sh exec's python3, which renames unsynced data and exec's true: the finding
    names python3, not the shell before it nor the program after it."""
    script = RENAME_UNSYNCED + "; os.execv('/bin/true', ['true'])"
    t = trace(["sh", "-c", f'exec {PYTHON3} -c "{script}"'])
    assert t.returncode == 0, t.stderr
    finding = fs101(t)
    assert finding["message"].startswith(f"python3 (pid {finding['pid']}) renamed "), finding["message"]
    images = [(p["exe"], p["argv"][:2]) for p in t.report["processes"]]
    assert images == [("/usr/bin/sh", ["sh", "-c"]), (PYTHON3, [PYTHON3, "-c"]), ("/bin/true", ["true"])]
    assert all(p["exec_at"] is not None for p in t.report["processes"])


def test_a_program_that_exits_at_once_keeps_its_argv(trace, build, tmp_path):
    """A C program a shell forks and exec's, gone long before its exec is analysed:
    its argv still comes with the exec, so it is not named after the shell."""
    rules = str(build("rules", "-pthread"))
    (tmp_path / "fs101").mkdir()
    t = trace(["sh", "-c", f"{rules} fs101; true"])
    assert t.returncode == 0, t.stderr
    finding = [f for f in t.report["findings"] if f["rule"] == "FS101" and f["path"].endswith("a.tmp")][0]
    assert finding["message"].startswith(f"rules (pid {finding['pid']}) "), finding["message"]
    (exec_,) = [e for e in t.of("exec") if e["path"] == rules]
    assert exec_["argv"] == [rules, "fs101"]
    entries = [p for p in t.report["processes"] if p["pid"] == finding["pid"]]
    assert [p["argv"] for p in entries] == [[rules, "fs101"]]      # its moment as sh did nothing


def test_attach_reads_exe_and_argv_of_the_processes_it_finds(tmp_path):
    """A Python target with a shell child, both running before the attach; the shell
    forks mv again and again after it: every process has its exe and argv, and each
    finding names its own program."""
    loop = "while :; do printf x > c.tmp; mv c.tmp c; sleep 0.05; done"
    # On SIGUSR1 the target waits for c to be replaced three times (two whole mv after it), says "done", and sleeps.
    target = ("import os, signal, subprocess, time\n"
              f"child = subprocess.Popen(['/bin/sh', '-c', {loop!r}])\n"
              "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\n"
              "print('ready', flush=True)\n"
              "signal.sigwait({signal.SIGUSR1})\n"
              "def inode():\n"
              "    try:\n"
              "        return os.stat('c').st_ino\n"
              "    except FileNotFoundError:\n"
              "        return None\n"
              "seen, replaced = inode(), 0\n"
              "while replaced < 3:\n"
              "    time.sleep(0.01)\n"
              "    now = inode()\n"
              "    replaced, seen = replaced + (now != seen), now\n"
              "print('done', flush=True)\n"
              "signal.pause()\n")
    t = attach_while_running([sys.executable, "-c", target], tmp_path)
    target_pid = t.report["target"]["pid"]
    (shell,) = [e["pid"] for e in t.of("adopt") if e["ppid"] == target_pid]   # and maybe a sleep of its
    for process in t.report["processes"]:
        assert process["exe"] and process["argv"], process
    by_pid = {p["pid"]: p for p in t.report["processes"]}
    assert by_pid[target_pid]["argv"][:2] == [sys.executable, "-c"]
    assert by_pid[shell]["argv"][:2] == ["/bin/sh", "-c"] and by_pid[shell]["exe"] == "/usr/bin/dash"
    renames = [f for f in t.report["findings"] if f["rule"] == "FS101"]     # one per mv process
    assert renames and all(f["message"].startswith(f"mv (pid {f['pid']}) renamed {tmp_path / 'c.tmp'}")
                           for f in renames), renames
    assert not any(f["message"].startswith("process (pid") for f in t.report["findings"])
