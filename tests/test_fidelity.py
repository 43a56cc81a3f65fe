"""What `fsaudit run` gives the command it starts: exactly what the command
would get untraced (argv, environment, every inherited fd, cwd, umask,
limits, signal dispositions and mask, ids, terminal, process group, exit
status), and with --user the account's identity as a login would set it.

Each comparison runs tests/programs/selfreport (in C: an interpreter would
change its own signal dispositions) from the same starting state twice, once
directly and once under `fsaudit run`, each time from a shell, and compares
the two reports field by field. The starting state is unusual on purpose
(umask, ignored and blocked signals, lowered limits, nice, oom_score_adj, a
controlling terminal on 0-2, fds 3-6), so that nothing fsaudit would set
from defaults can match it by accident.
"""

from __future__ import annotations

import fcntl
import grp
import json
import os
import pwd
import resource
import shlex
import shutil
import signal
import subprocess
import tempfile
import termios
import threading
from pathlib import Path

import pytest

from conftest import FSAUDIT
from test_live import pane  # noqa: F401 (the fixture: a tmux pane of a private tmux server)

STATUS = 7                                   # the exit status selfreport is asked for
# bash, not dash: dash unblocks every signal at start-up. `exit` keeps the
# shell as the command's parent.
SHELL = ["/bin/bash", "-c", '"$@"; exit $?', "bash"]
# Fields that differ between any two runs, traced or not: pid, a new process
# each time; ppid, the shell untraced and fsaudit traced (the command is
# fsaudit's child, as it would be strace's).
PROCESS_IDS = {"pid", "ppid"}
# And $_, which bash sets to the path of the program it starts (selfreport
# untraced, python traced).
BETWEEN_RUNS = PROCESS_IDS | {"environ._"}
# The signals a shell ignores for `command &`, one more, and two blocked.
IGNORED = (signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1)
BLOCKED = (signal.SIGUSR2, signal.SIGWINCH)


def flatten(report: dict) -> dict:
    """The report as one value per comparable field: each fd's target and
    fdinfo, each environment variable, each /proc/self/status line."""
    fields = {key: value for key, value in report.items() if key not in ("fds", "environ", "status", "opens")}
    for fd, entry in report["fds"].items():
        fields[f"fds.{fd}.target"] = entry["target"]
        fields[f"fds.{fd}.fdinfo"] = entry["fdinfo"]
    for variable in report["environ"]:
        name, _, value = variable.partition("=")
        fields[f"environ.{name}"] = value
    for line in report["status"]:
        name, _, value = line.partition(":")
        fields[f"status.{name}"] = value.strip()
    for path, result in report["opens"].items():
        fields[f"opens.{path}"] = result
    return fields


def differing(plain: dict, traced: dict) -> dict:
    """field -> (untraced value, traced value), for the fields whose values differ."""
    a, b = flatten(plain), flatten(traced)
    return {key: (a.get(key), b.get(key)) for key in sorted(a.keys() | b.keys()) if a.get(key) != b.get(key)}


def signal_mask(report: dict, field: str) -> set[int]:
    line = next(line for line in report["status"] if line.startswith(field + ":"))
    bits = int(line.split()[1], 16)
    return {n for n in range(1, 65) if bits & (1 << (n - 1))}


class Start:
    """The state both runs start from: the shell that runs them (untraced, or
    fsaudit under it) is started with it by this test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.master, self.slave = os.openpty()
        self.pipe_read, self.pipe_write = os.pipe()
        self.report_path = directory / "report.json"            # fd 3, reopened (same inode) for each run
        (directory / "rw.txt").write_text("0123456789")
        self.rw = os.open(directory / "rw.txt", os.O_RDWR)       # fd 6, at offset 5: nobody may move it
        os.lseek(self.rw, 5, os.SEEK_SET)
        self.private = os.open(directory / "private.txt", os.O_WRONLY | os.O_CREAT, 0o600)
        self.terminal = bytearray()
        self._reading = threading.Thread(target=self._read_terminal, daemon=True)
        self._reading.start()

    def _read_terminal(self) -> None:
        """What is written to the terminal (fsaudit's progress and summary), kept
        for failure messages; read continuously so that nothing blocks on it."""
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.terminal += data

    def _prepare(self, report_fd: int) -> None:
        """In the shell's process before its exec: the unusual state."""
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)                      # the pty: controlling terminal, foreground
        os.umask(0o027)
        os.nice(3)
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write("123")
        for signum in IGNORED:
            signal.signal(signum, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED)
        for limit, soft in ((resource.RLIMIT_NOFILE, 1000), (resource.RLIMIT_CORE, 1 << 20),
                            (resource.RLIMIT_MEMLOCK, 4 << 20)):
            resource.setrlimit(limit, (soft, resource.getrlimit(limit)[1]))
        # 3: a `3>` file; 4 and 5: both ends of a pipe; 6: a file at offset 5;
        # 7: close-on-exec (the shell's exec closes it; it reaches nobody).
        sources = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100)
                   for fd in (report_fd, self.pipe_read, self.pipe_write, self.rw, self.private)]
        for target, source in enumerate(sources, start=3):
            os.dup2(source, target, inheritable=target != 7)
        os.closerange(8, 1 << 16)

    def run(self, argv: list[str], cwd: Path | None = None) -> tuple[int, dict]:
        """argv run by a shell started in this state: its exit status and selfreport's report."""
        report_fd = os.open(self.report_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            shell = subprocess.Popen(SHELL + argv, cwd=cwd or self.directory, stdin=self.slave, stdout=self.slave,
                                     stderr=self.slave, start_new_session=True, close_fds=False,
                                     preexec_fn=lambda: self._prepare(report_fd))
        finally:
            os.close(report_fd)
        status = shell.wait(timeout=120)
        text = self.report_path.read_text()
        assert text, f"selfreport wrote nothing (status {status}):\n{self.output()}"
        return status, json.loads(text)

    def output(self) -> str:
        return self.terminal.decode(errors="replace")

    def close(self) -> None:
        for fd in (self.slave, self.pipe_read, self.pipe_write, self.rw, self.private):
            os.close(fd)
        self._reading.join(timeout=5)      # the pty's last slave fd is closed: EIO ends the read
        os.close(self.master)


@pytest.fixture
def world(bpf):
    """A directory every user can reach (the test's own tmp_path is root's, 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="fsaudit-fidelity-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def start(world):
    opened = Start(world)
    yield opened
    opened.close()


@pytest.fixture
def selfreport(build, world) -> str:
    exe = world / "selfreport"
    shutil.copy(build("selfreport"), exe)
    exe.chmod(0o755)
    return str(exe)


def fsaudit_run(world: Path, *options: str) -> list[str]:
    return [*FSAUDIT, "run", "--no-live", "--fail-on", "never", "--events", str(world / "events.jsonl"),
            "--json", str(world / "fsaudit.json"), *options, "--"]


def events_of(world: Path) -> list[dict]:
    return [json.loads(line) for line in (world / "events.jsonl").read_text().splitlines()[1:-1]]   # header, events, trailer


@pytest.mark.parametrize("options, by_design", [
    ((), set()),
    # --stacks asks JIT runtimes for perf maps through the environment.
    (("--stacks",), {"environ.PYTHONPERFSUPPORT", "environ.DOTNET_PerfMapEnabled", "environ.NODE_OPTIONS"}),
    # --inject installs a seccomp filter in the command before its exec.
    (("--inject", "fsync=EIO"), {"status.Seccomp"}),
], ids=["plain", "stacks", "inject"])
def test_the_command_sees_what_it_would_see_untraced(start, selfreport, world, options, by_design):
    argv = [selfreport, "3", str(STATUS)]
    plain_status, plain = start.run(argv)
    traced_status, traced = start.run(fsaudit_run(world, *options) + argv)

    assert plain_status == STATUS and traced_status == STATUS, start.output()
    assert set(differing(plain, traced)) == BETWEEN_RUNS | by_design, (differing(plain, traced), start.output())
    # The starting state did arrive (the comparison above would also pass if
    # both runs had lost it the same way).
    assert sorted(traced["fds"]) == ["0", "1", "2", "3", "4", "5", "6"]
    assert traced["fds"]["3"]["target"] == str(start.report_path)
    assert "pos: 5" in traced["fds"]["6"]["fdinfo"]
    assert all(traced["isatty"]) and traced["in_terminal_foreground"] and traced["session_is_parents"]
    assert "Umask: 0027" in traced["status"] and traced["nice"] == 3 and traced["oom_score_adj"] == ["123"]
    assert "Max open files 1000" in " | ".join(traced["limits"])
    # Ignored: the harness's, and whatever the test run itself inherited (make
    # starts it with glibc's posix_spawn, which leaves glibc's signals 32 and 33 ignored),
    # but not SIGPIPE nor SIGXFSZ, which Python ignores and must not pass on.
    ignored = signal_mask(traced, "SigIgn")
    assert set(IGNORED) <= ignored and not ignored & {signal.SIGPIPE, signal.SIGXFSZ}, ignored
    assert signal_mask(traced, "SigBlk") == set(BLOCKED)

    # The event log starts the command with exactly the fds it has, with
    # their flags, and a write to fd 3 resolves to its file.
    events = events_of(world)
    seeded = {e["fd"]: e for e in events if e["syscall"] == "inherit" and e["pid"] == traced["pid"] and "flags" in e}
    assert sorted(seeded) == [0, 1, 2, 3, 4, 5, 6]
    assert seeded[3]["path"] == str(start.report_path) and seeded[3]["flags"][0] == "O_WRONLY"
    assert seeded[4]["kind"] == seeded[5]["kind"] == "pipe" and seeded[6]["flags"][0] == "O_RDWR"
    assert not any("O_CLOEXEC" in e["flags"] for e in seeded.values())
    writes = [e for e in events if e["syscall"] == "write" and e["pid"] == traced["pid"]]
    assert [(w["fd"], w["path"]) for w in writes] == [(3, str(start.report_path))]


def test_a_shell_redirect_to_fd_3_reaches_the_command(bpf, tmp_path):
    out = tmp_path / "out.txt"
    events = tmp_path / "events.jsonl"
    command = [*FSAUDIT, "run", "--no-live", "--fail-on", "never", "--events", str(events),
               "--", "sh", "-c", "echo via-fd3 >&3"]
    result = subprocess.run(["/bin/sh", "-c", f'exec "$@" 3>{shlex.quote(str(out))}', "sh", *command],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "via-fd3\n"
    logged = [json.loads(line) for line in events.read_text().splitlines()[1:-1]]   # header, events, trailer
    assert [e["path"] for e in logged if e["syscall"] == "write"] == [str(out)]


def login_user() -> pwd.struct_passwd:
    """nobody, or better an account with supplementary groups beside its own."""
    for group in grp.getgrall():
        for name in group.gr_mem:
            try:
                account = pwd.getpwnam(name)
            except KeyError:
                continue
            if account.pw_uid != 0 and account.pw_gid != 0 and group.gr_gid != 0:
                return account
    return pwd.getpwnam("nobody")


def root_file(world: Path, name: str, mode: int) -> str:
    path = world / name
    path.write_text("root's\n")
    os.chown(path, 0, 0)
    path.chmod(mode)
    return str(path)


def test_user_runs_the_command_with_the_accounts_groups_and_login_environment(start, selfreport, world):
    account = login_user()
    # Readable by group root only, writable by group root only, and readable
    # by others but not by group root: only a process outside group 0 reads it.
    group_only = root_file(world, "group-only", 0o640)
    group_writable = root_file(world, "group-writable", 0o660)
    others_only = root_file(world, "others-only", 0o604)
    argv = [selfreport, "3", str(STATUS), group_only, group_writable, others_only]
    plain_status, plain = start.run(argv)
    traced_status, traced = start.run(fsaudit_run(world, "--user", account.pw_name) + argv)

    assert plain_status == STATUS and traced_status == STATUS, start.output()
    groups = os.getgrouplist(account.pw_name, account.pw_gid)
    assert traced["uid"] == [account.pw_uid] * 3 and traced["gid"] == [account.pw_gid] * 3
    assert sorted(traced["groups"]) == sorted(groups) and 0 not in traced["groups"]
    environ = dict(variable.partition("=")[::2] for variable in traced["environ"])
    assert (environ["HOME"], environ["USER"], environ["LOGNAME"], environ["SHELL"]) == \
        (account.pw_dir, account.pw_name, account.pw_name, account.pw_shell or "/bin/sh")
    assert "CapEff: 0000000000000000" in traced["status"] and "CapPrm: 0000000000000000" in traced["status"]
    assert traced["opens"] == {group_only: {"read": "EACCES", "write": "EACCES"},
                               group_writable: {"read": "EACCES", "write": "EACCES"},
                               others_only: {"read": "ok", "write": "EACCES"}}
    # Everything else is as the command would have it untraced, as root.
    identity = {"uid", "gid", "groups", "status.Uid", "status.Gid", "status.Groups", "status.CapPrm",
                "status.CapEff", "environ.HOME", "environ.USER", "environ.LOGNAME", "environ.SHELL",
                *(f"opens.{path}" for path in (group_only, group_writable, others_only))}
    assert set(differing(plain, traced)) - identity == BETWEEN_RUNS, differing(plain, traced)


def test_the_dashboard_changes_only_the_commands_0_to_2(pane, selfreport, world):
    """Under --live, in a real terminal: the command's 1 and 2 are the
    dashboard's pty and its 0 is /dev/null (the keys typed are the
    dashboard's); every other fd and all the rest arrive as untraced."""
    (world / "in.txt").write_text("input\n")
    redirects = "3>report.json 4<in.txt 5<>rw.txt"
    probe = f"{shlex.quote(selfreport)} 3 {STATUS}"
    fsaudit = shlex.join([*FSAUDIT, "run", "--live", "--fail-on", "never", "--json", "fsaudit.json", "--"])
    # dash: bash would set $_ and, as the pane settles its size, COLUMNS and LINES.
    runs = (f"cd {shlex.quote(str(world))} && umask 027 && {probe} {redirects}; echo $? > plain.status; "
            f"cp report.json plain.json; {fsaudit} {probe} {redirects}; echo $? > live.status")
    screen = pane(f"exec /bin/sh -c {shlex.quote(runs)}")
    _, final = screen.frames_until_exit()
    assert (world / "plain.status").read_text() == f"{STATUS}\n"
    assert (world / "live.status").read_text() == f"{STATUS}\n", final
    plain, live = json.loads((world / "plain.json").read_text()), json.loads((world / "report.json").read_text())
    dashboard = {f"fds.{fd}.{part}" for fd in (0, 1, 2) for part in ("target", "fdinfo")} | {"isatty"}
    assert set(differing(plain, live)) - dashboard == PROCESS_IDS, differing(plain, live)
    assert live["fds"]["0"]["target"] == "/dev/null" and live["isatty"] == [False, True, True]
    assert sorted(live["fds"]) == ["0", "1", "2", "3", "4", "5"] and live["in_terminal_foreground"]
