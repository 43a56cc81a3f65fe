/* How a program copes with a failing fsync/write/close, for `--inject` tests.
 * Each mode writes data.txt in the cwd and handles the injected failure its
 * own way; the tests check that fsaudit names exactly the mistake made. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int open_data(const char *name) {
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(name); exit(2); }
    return fd;
}

static void put(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int fd = open_data("data.txt");
    put(fd, "record 1\n");
    if (!strcmp(mode, "retry")) {            /* fsyncgate: call fsync again until it "works" */
        while (fsync(fd) != 0) fprintf(stderr, "fsync: %s, retrying\n", strerror(errno));
    } else if (!strcmp(mode, "swallow")) {   /* ignore the error and keep writing */
        fsync(fd);
        put(fd, "record 2\n");
    } else if (!strcmp(mode, "abort")) {     /* correct: a failed fsync is fatal */
        if (fsync(fd) != 0) { fprintf(stderr, "fsync: %s\n", strerror(errno)); return 1; }
    } else if (!strcmp(mode, "short")) {     /* a failed write goes unnoticed, then fsync succeeds */
        put(fd, "record 2\n");
        if (fsync(fd) != 0) return 1;
    } else if (!strcmp(mode, "close")) {     /* synced, but the close error is ignored */
        if (fsync(fd) != 0) return 1;
        close(fd);
        return 0;
    } else if (!strcmp(mode, "child")) {     /* the second fsync of the tree happens in a child */
        if (fsync(fd) != 0) return 1;
        pid_t pid = fork();
        if (pid == 0) {
            put(fd, "record 2\n");
            fsync(fd);                        /* error ignored, child exits 0 */
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
    } else if (!strcmp(mode, "two-files")) { /* data.txt and journal.wal, each synced once */
        int wal = open_data("journal.wal");
        put(wal, "wal 1\n");
        if (fsync(fd) != 0 || fsync(wal) != 0) { fprintf(stderr, "sync failed\n"); return 1; }
        close(wal);
    } else if (!strcmp(mode, "no-sync")) {   /* never calls fsync at all */
    } else {
        fprintf(stderr, "usage: faults retry|swallow|abort|short|close|child|two-files|no-sync\n");
        return 2;
    }
    close(fd);
    return 0;
}
