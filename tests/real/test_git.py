"""git 2.39 (Debian): init, config, add, commit; with the default core.fsync and with core.fsync=all.

scenarios/git_session.sh runs `git init`, two `git config` calls, `git add`
and `git commit` in repo/ (a.txt and b.txt are written before tracing).

Ground truth
------------

Documentation/config/core.txt (v2.39.5): "core.fsync: A comma-separated list
of components of the repository that should be hardened via the
core.fsyncMethod when created or modified. [...] Items that are not
hardened may be lost in the event of an unclean system shutdown. [...] The
default on most platforms is equivalent to `core.fsync=committed,-loose-object`,
which has good performance, but risks losing recent work in the event of an
unclean system shutdown." `all` "syncs all individual components":
loose-object, pack, pack-metadata, commit-graph, index, reference.

Default (W is the work directory, R = W/repo). `strace -f -y`:

    openat(AT_FDCWD, ".git/objects/ce/tmp_obj_H15jc8", O_RDWR|O_CREAT|O_EXCL, 0444) = 5
    write(5<R/.git/objects/ce/tmp_obj_H15jc8>, "x\\1K\\312\\311OR0c\\310H...", 21) = 21
    link(".git/objects/ce/tmp_obj_H15jc8", ".git/objects/ce/013625030ba8dba906f756967f9e9ca394464a") = 0
    ...
    write(3<R/.git/index.lock>, "DIRC\\0\\0\\0\\2...", 156) = 156
    rename("R/.git/index.lock", "R/.git/index") = 0
    ...
    write(3<R/.git/refs/heads/main.lock>, "1e9b7c27cfc8a8308bbb0f6c617389a1"..., 40) = 40
    rename("R/.git/refs/heads/main.lock", "R/.git/refs/heads/main") = 0

Loose objects, the index and the branch ref are published unsynced: FS101 on
each is TRUE (the fix is core.fsync, e.g. `added` or `all`). `git init`
and `git config` write .git/config (config.lock -> config) and .git/HEAD
(HEAD.lock -> HEAD) unsynced in both configurations: no core.fsync
component covers the config file, and init's HEAD is written before any
repository configuration is read. A torn config or HEAD after a crash makes
the repository unusable: TRUE.

core.fsync=all, core.fsyncMethod=fsync:

    write(5<R/.git/objects/ce/tmp_obj_OfsVRE>, ..., 21) = 21
    fsync(5<R/.git/objects/ce/tmp_obj_OfsVRE>) = 0
    link(".git/objects/ce/tmp_obj_OfsVRE", ".git/objects/ce/013625030ba8dba906f756967f9e9ca394464a") = 0
    unlink(".git/objects/ce/tmp_obj_OfsVRE") = 0
    ...
    fsync(3<R/.git/index.lock>) = 0
    rename("R/.git/index.lock", "R/.git/index") = 0
    ...
    fsync(3<R/.git/refs/heads/main.lock>) = 0
    rename("R/.git/refs/heads/main.lock", "R/.git/refs/heads/main") = 0

FS101 on objects, index and refs is FALSE there. In neither configuration
does git fsync a directory (v2.39.5 has no directory fsync anywhere:
fsync_component() is only ever given a file's fd), so FS102 on .git,
.git/objects/XX and .git/refs/heads is TRUE in both: the new names can be
lost although their data was synced.

NOISE: FS105 on the templates `git init` copies (description, hooks/*.sample,
info/exclude), COMMIT_EDITMSG (the message's scratch file) and the reflogs
logs/* (append-only logs no component hardens); FS104 on the temporary
files git removes (init's filesystem probe .git/tXXXXXX, the tmp_obj_*
names after their link, HEAD.lock which `commit` takes and rolls back).
One FS102 finding stands for all the renames into one directory by one
process ("renamed or linked .git/HEAD and .git/config (5 times)"): its path
is the directory, and it is judged by the files it names.
"""

from __future__ import annotations

from pathlib import Path

from .realcase import FALSE, NOISE, SCENARIOS, TRUE, Case, Truth, parametrize


def prepare(fsync: str | None):
    def setup(work: Path) -> None:
        core = f"[core]\n\tfsync = {fsync}\n\tfsyncMethod = fsync\n" if fsync else ""
        (work / "gitconfig").write_text(core)
        repo = work / "repo"
        repo.mkdir()
        (repo / "a.txt").write_text("hello\n")
        (repo / "b.txt").write_text("world\n")
    return setup


def session(work: Path) -> list[str]:
    return [str(SCENARIOS / "git_session.sh"), str(work / "repo")]


ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "{work}/gitconfig", "HOME": "{work}"}

ALWAYS = [
    Truth("FS101", "repo/.git/config*", TRUE, "no core.fsync component covers the config file", by="git"),
    Truth("FS101", "repo/.git/HEAD*", TRUE, "init writes HEAD through HEAD.lock without fsync", by="git"),
    Truth("FS102", "repo/.git/objects/??/*", TRUE, "git never fsyncs a directory", by="git"),
    Truth("FS102", "repo/.git/refs/heads/main", TRUE, "git never fsyncs a directory", by="git"),
    Truth("FS102", "repo/.git/*", TRUE, "git never fsyncs a directory (HEAD, config, index)", by="git"),
    Truth("FS105", "repo/.git/description", NOISE, "a template copied by init"),
    Truth("FS105", "repo/.git/hooks/*", NOISE, "sample hooks copied by init"),
    Truth("FS105", "repo/.git/info/exclude", NOISE, "a template copied by init"),
    Truth("FS105", "repo/.git/COMMIT_EDITMSG", NOISE, "the commit message's scratch file"),
    Truth("FS105", "repo/.git/logs/*", NOISE, "reflogs: append-only logs"),
    Truth("FS104", "repo/.git/objects/*/tmp_obj_*", NOISE, "the temporary name, removed after the link"),
    Truth("FS104", "repo/.git/HEAD.lock", NOISE, "a lock commit takes and rolls back"),
    Truth("FS104", "repo/.git/t*", NOISE, "init's filesystem probe files"),
    Truth("FS103", "repo/.git/*", FALSE, "objects are published by link(), which FS102 judges"),
    Truth("FS107", "*", FALSE, "git never truncates a file in place"),
]

CASES = [
    Case("git-default", "git init/config/add/commit, default core.fsync", ("git", "sh"), session, [
        Truth("FS101", "repo/.git/objects/*", TRUE, "loose objects are not hardened by default", by="git"),
        Truth("FS101", "repo/.git/index*", TRUE, "the index is not hardened by default", by="git"),
        Truth("FS101", "repo/.git/refs/heads/main*", TRUE, "refs are not hardened by default", by="git"),
        *ALWAYS,
    ], setup=prepare(None), env=ENV),
    Case("git-fsync-all", "git init/config/add/commit, core.fsync=all", ("git", "sh"), session, [
        Truth("FS101", "repo/.git/objects/*", FALSE, "each object is fsynced before its link()"),
        Truth("FS101", "repo/.git/index*", FALSE, "index.lock is fsynced before its rename"),
        Truth("FS101", "repo/.git/refs/heads/main*", FALSE, "main.lock is fsynced before its rename"),
        *ALWAYS,
    ], setup=prepare("all"), env=ENV),
]


@parametrize(CASES)
def test_ground_truth(traced, case, check):
    check.run(traced(case))
