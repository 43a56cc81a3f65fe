/* Findings with one cause (tests/test_groups.py).
 *
 * usage: groups MODE (in a directory the test made, as the cwd)
 *   sites:   the parent saves alpha/a.tmp, a forked child beta/b.tmp, both
 *            through save_naive (no fsync before the rename): one call site,
 *            two processes, two directories.
 *   renames: in ./git, renames HEAD.lock over HEAD once and config.lock over
 *            config four times, after fsyncing each, and never fsyncs the
 *            directory (git's lock-file dance without core.fsync).
 *   unlinks: in ./db, fsyncs app.db, then removes app.db-wal and app.db-shm
 *            without fsyncing the directory.
 * Every call is checked: a failure exits 100, so a broken run cannot pass.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void check(long result, const char *what) {
    if (result < 0) {
        perror(what);
        exit(100);
    }
}

static void write_file(const char *path, int do_sync) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    check(fd, path);
    check(write(fd, "data\n", 5), path);
    if (do_sync)
        check(fsync(fd), path);
    check(close(fd), path);
}

__attribute__((noinline)) static void save_naive(const char *tmp, const char *dst) {
    write_file(tmp, 0);
    check(rename(tmp, dst), tmp);  // @rename
}

static void locked_update(const char *name) {
    char lock[64];
    snprintf(lock, sizeof lock, "git/%s.lock", name);
    char path[64];
    snprintf(path, sizeof path, "git/%s", name);
    write_file(lock, 1);
    check(rename(lock, path), lock);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "sites")) {
        check(mkdir("alpha", 0755), "alpha");
        check(mkdir("beta", 0755), "beta");
        pid_t child = fork();
        check(child, "fork");
        if (child == 0) {
            save_naive("beta/b.tmp", "beta/b.dat");
            _exit(0);
        }
        int status;
        check(waitpid(child, &status, 0), "waitpid");
        if (!WIFEXITED(status) || WEXITSTATUS(status))
            return 100;
        save_naive("alpha/a.tmp", "alpha/a.dat");
    } else if (!strcmp(mode, "renames")) {
        check(mkdir("git", 0755), "git");
        locked_update("HEAD");
        for (int i = 0; i < 4; i++)
            locked_update("config");
    } else if (!strcmp(mode, "unlinks")) {
        check(mkdir("db", 0755), "db");
        write_file("db/app.db", 1);
        write_file("db/app.db-wal", 1);
        write_file("db/app.db-shm", 1);
        int dir = open("db", O_RDONLY | O_DIRECTORY);
        check(dir, "db");
        check(fsync(dir), "db");
        check(close(dir), "db");
        check(unlink("db/app.db-wal"), "app.db-wal");
        check(unlink("db/app.db-shm"), "app.db-shm");
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 102;
    }
    return 0;
}
