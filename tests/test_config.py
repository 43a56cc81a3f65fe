"""Which configuration applies, and saying so: the nearest fsaudit.toml, or
pyproject.toml with [tool.fsaudit], in the current directory or its parents up
to a repository's root, as ruff finds its own; a file found so that another
user could have written is ignored with a warning (one suppression turns a run
with an error into "No findings"); --config applies what it names; globs are
gitignore-style, relative to the file's directory (the current one for options);
the summary and the report name the file applied and what each suppression hid,
with its reason. On a log recorded from a real run, and one real run."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from conftest import fsaudit

NOBODY = pwd.getpwnam("nobody").pw_uid
REASON = "scratch files, rewritten on every start"
# Hides both FS101 findings of the recording (fs101/a.tmp and dirfd/sub/t.tmp), wherever
# the file that says so is (the recording is in a directory of its own).
SUPPRESS = f"""\
[[suppress]]
rule = "FS101"
path = "/**/*.tmp"
reason = "{REASON}"

[[suppress]]
rule = "FS102"
path = "/nowhere/*"
reason = "matches nothing"
"""


@pytest.fixture(scope="module")
def events(bpf, build, tmp_path_factory) -> Path:
    """The event log of rules.c fs101 dirfd: two FS101 errors."""
    directory = tmp_path_factory.mktemp("configured")
    for mode in ("fs101", "dirfd"):
        (directory / mode).mkdir()
    proc = fsaudit("run", "--fail-on", "never", "--events", "events.jsonl", "--",
                   str(build("rules", "-pthread")), "fs101", "dirfd", cwd=directory)
    assert proc.returncode == 0, proc.stderr
    return directory / "events.jsonl"


def replay(events: Path, cwd: Path, *options: str, env: dict | None = None):
    """`fsaudit report` in cwd: (process, report). SUDO_UID only as given."""
    out = cwd / "replayed.json"
    out.unlink(missing_ok=True)
    environment = {k: v for k, v in os.environ.items() if k != "SUDO_UID"} | (env or {})
    proc = fsaudit("report", str(events), "--fail-on", "never", "--json", str(out), *options, cwd=cwd,
                   env=environment)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def fs101(report: dict) -> list[str]:
    return [f["path"] for f in report["findings"] if f["rule"] == "FS101"]


def planted(directory: Path, name: str = "fsaudit.toml", text: str = SUPPRESS, owner: int = 0,
            mode: int = 0o644) -> Path:
    path = directory / name
    path.write_text(text)
    os.chown(path, owner, 0)
    os.chmod(path, mode)
    return path


def assert_ignored(events: Path, directory: Path, path: Path, why: str) -> None:
    proc, report = replay(events, directory)
    assert proc.returncode == 0, proc.stderr
    assert len(fs101(report)) == 2                    # the suppression was not applied
    assert report["config"] == {"path": None, "suppressed": []}
    warning = f"{path} not applied: {why}"
    assert [w for w in report["warnings"] if w.startswith(warning)] == report["warnings"] != []
    assert f"fsaudit: warning: {warning}" in proc.stderr
    # the summary, which prints paths under the cwd (directory) relative
    assert f"warning: {path.relative_to(directory)} not applied: {why}" in proc.stdout


def test_a_config_planted_by_another_user_is_ignored_with_a_warning(events, tmp_path):
    os.chmod(tmp_path, 0o1777)                        # a shared directory, like /tmp
    path = planted(tmp_path, owner=NOBODY)
    assert_ignored(events, tmp_path, path, f"owned by nobody (uid {NOBODY}), not by root or the user running fsaudit")


@pytest.mark.parametrize("mode, name", [(0o664, "fsaudit.toml"), (0o646, "fsaudit.toml"), (0o666, "pyproject.toml")])
def test_a_config_writable_by_group_or_others_is_ignored_with_a_warning(events, tmp_path, mode, name):
    text = SUPPRESS.replace("[[suppress]]", "[[tool.fsaudit.suppress]]") if name == "pyproject.toml" else SUPPRESS
    path = planted(tmp_path, name, text, mode=mode)
    assert_ignored(events, tmp_path, path, f"writable by group or others (mode {mode:04o})")


def test_a_planted_pyproject_without_fsaudit_settings_is_not_worth_a_warning(events, tmp_path):
    planted(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n", owner=NOBODY)
    proc, report = replay(events, tmp_path)
    assert proc.returncode == 0 and proc.stderr == "" and report["warnings"] == []


def test_an_ignored_file_leaves_the_next_one_to_apply(events, tmp_path):
    planted(tmp_path, "fsaudit.toml", 'disable = ["FS101"]\n', owner=NOBODY)
    pyproject = planted(tmp_path, "pyproject.toml", SUPPRESS.replace("[[suppress]]", "[[tool.fsaudit.suppress]]"))
    proc, report = replay(events, tmp_path)
    assert report["config"]["path"] == str(pyproject) and fs101(report) == []
    assert len(report["warnings"]) == 1 and "fsaudit.toml not applied" in report["warnings"][0]


def test_config_given_with_option_is_applied_whoever_owns_it(events, tmp_path):
    path = planted(tmp_path, "shared.toml", owner=NOBODY, mode=0o666)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc, report = replay(events, elsewhere, "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert fs101(report) == [] and report["warnings"] == []
    assert report["config"] == {"path": str(path), "suppressed": [
        {"rule": "FS101", "path": "/**/*.tmp", "reason": REASON, "hidden": 2},
        {"rule": "FS102", "path": "/nowhere/*", "reason": "matches nothing", "hidden": 0}]}


def test_the_summary_and_the_report_name_the_config_applied(events, tmp_path):
    path = planted(tmp_path)
    proc, report = replay(events, tmp_path)
    assert report["config"]["path"] == str(path)
    assert [s["hidden"] for s in report["config"]["suppressed"]] == [2, 0]
    lines = proc.stdout.splitlines()
    assert f"config: {path.relative_to(tmp_path)}" in lines     # under the cwd: relative
    assert f"  suppressed FS101 on /**/*.tmp: 2 findings hidden ({REASON})" in lines
    assert "  suppressed FS102 on /nowhere/*: 0 findings hidden (matches nothing)" in lines
    # without a config file, the report says none applied, and the summary says nothing of it
    path.unlink()
    proc, report = replay(events, tmp_path)
    assert report["config"] == {"path": None, "suppressed": []} and len(fs101(report)) == 2
    assert "config:" not in proc.stdout


def test_the_sudo_user_s_own_config_is_applied(events, tmp_path):
    """`sudo fsaudit run` in one's own checkout: the file of the user who ran sudo is trusted."""
    path = planted(tmp_path, owner=NOBODY)
    proc, report = replay(events, tmp_path, env={"SUDO_UID": str(NOBODY)})
    assert report["config"]["path"] == str(path) and fs101(report) == [] and report["warnings"] == []


@pytest.mark.parametrize("text, says", [
    ("tool = 5\n", "tool must be a table"),
    ("[tool]\nfsaudit = 5\n", "tool.fsaudit must be a table"),
])
def test_a_pyproject_whose_tool_is_not_a_table_is_exit_2(events, tmp_path, text, says):
    path = planted(tmp_path, "pyproject.toml", text)
    proc, report = replay(events, tmp_path)
    assert proc.returncode == 2 and report is None
    assert proc.stderr == f"fsaudit: configuration: {path}: {says}\n"


# Discovery: the nearest file in the current directory or its parents, up to a repository's root


def repository(tmp_path: Path, marker: str = ".git") -> Path:
    """tmp_path/repo, a repository's root (marker: a directory, or a file as in a git worktree)."""
    root = tmp_path / "repo"
    root.mkdir()
    if marker == ".git file":
        (root / ".git").write_text("gitdir: /elsewhere/.git/worktrees/repo\n")
    else:
        (root / marker).mkdir()
    return root


def below(directory: Path, *names: str) -> Path:
    path = directory.joinpath(*names)
    path.mkdir(parents=True)
    return path


def as_pyproject(text: str) -> str:
    return "[project]\nname = 'x'\n\n" + text.replace("[[suppress]]", "[[tool.fsaudit.suppress]]")


def test_the_nearest_config_in_a_parent_directory_applies(events, tmp_path):
    root = repository(tmp_path)
    path = planted(root)
    proc, report = replay(events, below(root, "src", "deep"))
    assert proc.returncode == 0, proc.stderr
    assert report["config"]["path"] == str(path) and fs101(report) == []
    assert f"config: {path}" in proc.stdout.splitlines()


@pytest.mark.parametrize("marker", [".git", ".git file", ".hg", ".svn"])
def test_the_search_stops_at_the_repository_root(events, tmp_path, marker):
    planted(tmp_path)                                 # above the repository: not this project's
    root = repository(tmp_path, marker)
    proc, report = replay(events, below(root, "src"))
    assert proc.returncode == 0, proc.stderr
    assert report["config"] == {"path": None, "suppressed": []} and len(fs101(report)) == 2
    # the root itself is searched
    path = planted(root)
    assert replay(events, root / "src")[1]["config"]["path"] == str(path)


def test_a_pyproject_without_fsaudit_settings_is_passed_over_for_one_further_up(events, tmp_path):
    root = repository(tmp_path)
    path = planted(root, "pyproject.toml", as_pyproject(SUPPRESS))
    work = below(root, "work")
    planted(work, "pyproject.toml", "[project]\nname = 'work'\n\n[tool.black]\nline-length = 80\n")
    proc, report = replay(events, work)
    assert report["config"]["path"] == str(path) and fs101(report) == []


def test_fsaudit_toml_is_preferred_to_pyproject_toml_in_the_same_directory(events, tmp_path):
    """As ruff prefers ruff.toml; and a nearer file of either name beats one further up."""
    root = repository(tmp_path)
    preferred = planted(root, "fsaudit.toml", 'disable = ["FS101"]\n')
    planted(root, "pyproject.toml", as_pyproject(SUPPRESS))
    proc, report = replay(events, root)
    assert report["config"] == {"path": str(preferred), "suppressed": []} and fs101(report) == []
    work = below(root, "work")
    nearer = planted(work, "pyproject.toml", as_pyproject(SUPPRESS.replace("FS101", "FS102", 1)))
    proc, report = replay(events, work)
    assert report["config"]["path"] == str(nearer) and len(fs101(report)) == 2


def test_a_distrusted_file_further_up_is_skipped_with_a_warning(events, tmp_path):
    root = repository(tmp_path)
    applied = planted(root, "pyproject.toml", as_pyproject(SUPPRESS))
    work = below(root, "work")
    distrusted = planted(work, owner=NOBODY)
    proc, report = replay(events, below(work, "deeper"))
    assert report["config"]["path"] == str(applied)
    assert report["warnings"] == [f"{distrusted} not applied: owned by nobody (uid {NOBODY}), not by root "
                                  f"or the user running fsaudit (--config {distrusted} applies it)"]
    assert f"fsaudit: warning: {report['warnings'][0]}" in proc.stderr


def test_config_option_wins_over_the_file_found_and_reads_a_pyproject_s_table(events, tmp_path):
    root = repository(tmp_path)
    planted(root, "fsaudit.toml", 'disable = ["FS101", "FS102"]\n')
    given = planted(tmp_path, "pyproject.toml", as_pyproject('[tool.fsaudit]\ndisable = ["FS102"]\n'))
    proc, report = replay(events, root, "--config", str(given))
    assert proc.returncode == 0, proc.stderr
    assert report["config"]["path"] == str(given)
    assert len(fs101(report)) == 2 and not any(f["rule"] == "FS102" for f in report["findings"])
    planted(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n")
    proc, _ = replay(events, root, "--config", str(given))
    assert proc.returncode == 2 and proc.stderr == f"fsaudit: configuration: {given}: no [tool.fsaudit] table\n"


# Globs: gitignore-style, relative to the config file's directory (the cwd for options), or absolute


def test_a_config_s_relative_globs_start_from_its_directory(events, tmp_path):
    """The recording's files are fs101/a.tmp and dirfd/sub/t.tmp in events.parent."""
    given = planted(events.parent, "relative.toml", """\
exclude = ["sub/"]

[[suppress]]
rule = "FS101"
path = "fs101/*.tmp"
reason = "scratch"
""")
    try:
        proc, report = replay(events, tmp_path, "--config", str(given))
    finally:
        given.unlink()
    assert proc.returncode == 0, proc.stderr
    assert fs101(report) == []                # a.tmp suppressed, t.tmp out of scope
    assert report["config"]["suppressed"] == [{"rule": "FS101", "path": "fs101/*.tmp", "reason": "scratch",
                                               "hidden": 1}]
    assert not any("/dirfd/sub/" in (f["path"] or "") for f in report["findings"])
    # the same file anywhere else names nothing the recording has
    elsewhere = planted(tmp_path, "relative.toml", """\
[[suppress]]
rule = "FS101"
path = "fs101/*.tmp"
reason = "scratch"
""")
    proc, report = replay(events, tmp_path, "--config", str(elsewhere))
    assert len(fs101(report)) == 2 and report["config"]["suppressed"][0]["hidden"] == 0


@pytest.mark.parametrize("options, left", [
    (["--exclude", "dirfd/"], ["fs101/a.tmp"]),
    (["--path", "fs101/**"], ["fs101/a.tmp"]),
    (["--path", "./dirfd"], ["dirfd/sub/t.tmp"]),                     # a directory names what is in it
    (["--exclude", "*.tmp", "--exclude", "!a.tmp"], ["fs101/a.tmp"]),  # the last glob that names a path decides
    (["--path", "**/sub/*"], ["dirfd/sub/t.tmp"]),
])
def test_command_line_globs_start_from_the_current_directory(events, options, left):
    out = events.parent / "globs.json"
    proc = fsaudit("report", str(events), "--fail-on", "never", "--json", str(out), *options, cwd=events.parent)
    try:
        assert proc.returncode == 0, proc.stderr
        report = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    assert fs101(report) == [str(events.parent / name) for name in left]
    assert report["warnings"] == []


def test_a_path_option_that_matched_nothing_is_a_warning(events, tmp_path):
    proc, report = replay(events, tmp_path, "--path", "fs10l/**", "--path", "/**/fs101/*", "--path", "/nowhere/*")
    assert report["warnings"] == [f"--path 'fs10l/**' matched nothing in this run (relative to {tmp_path})",
                                  "--path '/nowhere/*' matched nothing in this run"]
    for warning in report["warnings"]:
        assert f"fsaudit: warning: {warning}" in proc.stderr.splitlines()
        # the summary, which names the cwd "." as it names paths under it relative
        assert f"warning: {warning.replace(str(tmp_path), '.')}" in proc.stdout.splitlines()
    assert fs101(report) == [str(events.parent / "fs101/a.tmp")]
    # a config file's `path` may be meant for other programs: no warning
    planted(tmp_path, text='path = ["/nowhere/*", "/**/fs101/*"]\n')
    proc, report = replay(events, tmp_path)
    assert report["warnings"] == [] and proc.stderr == ""


@pytest.mark.parametrize("text, says", [
    ('path = ["ok/**", "!"]\n', "path[1]: '!': an empty glob matches nothing"),
    ('exclude = ["/a/["]\n', "exclude[0]: '/a/[': not a glob that can match a path"),
    ('[[suppress]]\nrule = "FS101"\npath = "!x"\nreason = "r"\n',
     "suppress[0].path: '!x': a negated glob on its own matches nothing"),
    ('[roles]\n"logs/**" = "logfile"\n', "roles.'logs/**': 'logfile' is not a role (data, log, cache, lock, temp, "
                                         "volatile, stdio)"),
    ('[roles]\n"!x" = "log"\n', "roles: '!x': a negated glob on its own matches nothing"),
    ('roles = ["log"]\n', "roles must be a table of GLOB ="),
])
def test_a_bad_glob_or_role_is_exit_2_naming_the_key(events, tmp_path, text, says):
    path = planted(tmp_path, text=text)
    proc, report = replay(events, tmp_path)
    assert proc.returncode == 2 and report is None
    assert proc.stderr.startswith(f"fsaudit: configuration: {path}.{says}") and proc.stderr.count("\n") == 1


# Roles by glob: parsed here, decided by the engine


def test_roles_are_read_in_order_and_the_last_glob_naming_a_path_decides(tmp_path, monkeypatch):
    from fsaudit.analysis.config import load_config

    path = planted(tmp_path, text="""\
[roles]
"var/**" = "cache"
"var/db/" = "data"
"*.log" = "log"
"/srv/*.lock" = "lock"
""")
    monkeypatch.chdir(below(tmp_path, "elsewhere"))
    config = load_config(path, [], [])
    assert [(str(glob), role) for glob, role in config.roles] == [
        ("var/**", "cache"), ("var/db/", "data"), ("*.log", "log"), ("/srv/*.lock", "lock")]
    assert config.role_for(f"{tmp_path}/var/cache/x") == "cache"
    assert config.role_for(f"{tmp_path}/var/db/main.db") == "data"
    assert config.role_for(f"{tmp_path}/var/db/wal/seg.log") == "log"
    assert config.role_for("/srv/app.lock") == "lock"
    assert config.role_for("/srv/app/x.lock") is None            # * does not cross a /
    assert config.role_for(f"{tmp_path}/elsewhere/var/x") is None  # relative to the file, not the cwd


# What pathspec's GitIgnoreSpec says, for paths below the base (where a glob without a
# leading / means the same in a .gitignore); a leading / is absolute here.
GITIGNORE_CASES = [
    (["*.log"], ["a.log", "x/y/a.log", "a.logx", "log/a", "x.log/inner"]),
    (["build/"], ["build", "build/o", "src/build/o", "buildx/o"]),
    (["docs/*.md"], ["docs/a.md", "docs/x/a.md", "x/docs/a.md"]),
    (["**/cache/**", "!**/cache/keep"], ["cache/a", "x/cache/keep", "x/cache/b/keep", "cachex/a"]),
    (["logs/", "!logs/keep.log", "logs/keep.log.*"], ["logs/a", "logs/keep.log", "logs/keep.log.1"]),
    (["a/**/b"], ["a/b", "a/x/y/b", "a/x/b/c", "xa/b"]),
    (["[ab].db", "?.wal"], ["a.db", "c.db", "x/b.db", "1.wal", "12.wal"]),
    (["data", "!data/*.tmp"], ["data", "data/x.tmp", "data/x.db", "sub/data/x.tmp"]),
]


@pytest.mark.parametrize("texts, relatives", GITIGNORE_CASES, ids=lambda v: " ".join(v)[:30])
def test_globs_match_what_gitignore_would(texts, relatives):
    from pathspec import GitIgnoreSpec

    from fsaudit.analysis.globs import Glob, Globs

    base = "/srv/a[1] b"                      # glob characters in the base directory are literal
    spec, globs = GitIgnoreSpec.from_lines(texts), Globs([Glob(text, base) for text in texts])
    for relative in relatives:
        assert globs.match(f"{base}/{relative}") == spec.match_file(relative), relative
        assert not globs.match(f"/elsewhere/{relative}")


def test_absolute_globs_and_the_anchored_name():
    from fsaudit.analysis.globs import Glob, Globs

    assert Globs([Glob("/var/lib/*/db", "/home/u")]).match("/var/lib/pg/db")
    assert not Globs([Glob("/var/lib/*/db", "/home/u")]).match("/home/u/var/lib/pg/db")
    assert Globs([Glob("./app.db", "/srv")]).match("/srv/app.db")
    assert not Globs([Glob("./app.db", "/srv")]).match("/srv/old/app.db")
    assert Globs([Glob("app.db", "/")]).match("/srv/old/app.db")       # a config at the root


def test_a_relative_suppression_in_a_discovered_pyproject_applies_in_a_subdirectory(bpf, build, tmp_path):
    """A real run in repo/work: the pyproject.toml at the repository's root suppresses FS101
    on work/fs101/*.tmp, and dirfd/sub/t.tmp keeps its finding."""
    root = repository(tmp_path)
    path = planted(root, "pyproject.toml", as_pyproject(f"""\
[[suppress]]
rule = "FS101"
path = "work/fs101/*.tmp"
reason = "{REASON}"
"""))
    work = below(root, "work")
    for mode in ("fs101", "dirfd"):
        (work / mode).mkdir()
    proc = fsaudit("run", "--fail-on", "never", "--json", "report.json", "--",
                   str(build("rules", "-pthread")), "fs101", "dirfd", cwd=work)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((work / "report.json").read_text())
    assert report["config"] == {"path": str(path), "suppressed": [
        {"rule": "FS101", "path": "work/fs101/*.tmp", "reason": REASON, "hidden": 1}]}
    assert fs101(report) == [str(work / "dirfd/sub/t.tmp")]
    lines = proc.stderr.splitlines()                  # the summary of run
    assert f"config: {path}" in lines
    assert f"  suppressed FS101 on work/fs101/*.tmp: 1 finding hidden ({REASON})" in lines
