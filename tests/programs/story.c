/* Test program for the tracer: each mode does one precise syscall story
 * in the current directory. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char buf[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";

static volatile sig_atomic_t asked;

static void on_usr1(int signum) { (void)signum; asked = 1; }

static void *thread_writer(void *arg) {
    int fd = *(int *)arg;
    for (int i = 0; i < 10; i++) write(fd, buf, 64);
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "storm")) {            /* N x 64-byte writes, then fsync */
        long n = argc > 2 ? atol(argv[2]) : 100000;
        int fd = open("storm.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        for (long i = 0; i < n; i++) write(fd, buf, 64);
        int r1 = fsync(fd), r2 = fdatasync(fd);
        int p[2]; pipe(p);
        int r3 = fsync(p[0]);                /* EINVAL: a pipe cannot be synced */
        close(fd);
        return r1 || r2 || r3 != -1;
    }
    if (!strcmp(mode, "names")) {            /* rename, link, unlink, dirfd-relative calls */
        mkdir("sub", 0755);
        int fd = open("a.txt", O_WRONLY | O_CREAT | O_EXCL, 0600);
        write(fd, "a", 1);
        close(fd);
        rename("a.txt", "b.txt");
        link("b.txt", "c.txt");
        unlink("b.txt");
        int dir = open("sub", O_RDONLY | O_DIRECTORY);
        int rel = openat(dir, "rel.txt", O_WRONLY | O_CREAT | O_APPEND, 0644);
        write(rel, "r", 1);
        close(rel);
        renameat(dir, "rel.txt", AT_FDCWD, "moved.txt");
        fsync(dir);
        return 0;
    }
    if (!strcmp(mode, "dup")) {              /* writes via a dup'ed fd, synced through the original */
        int fd = open("dup.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int d = dup(fd);
        int d2 = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        write(d, buf, 64);
        write(d2, buf, 64);
        fsync(fd);
        return 0;
    }
    if (!strcmp(mode, "fork")) {             /* a child writes and renames, the parent waits */
        pid_t child = fork();
        if (child == 0) {
            int fd = open("child.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
            write(fd, buf, 64);
            close(fd);
            rename("child.tmp", "child.dat");
            _exit(5);
        }
        int status;
        waitpid(child, &status, 0);
        return WEXITSTATUS(status) == 5 ? 0 : 1;
    }
    if (!strcmp(mode, "thread")) {           /* a thread writes under its own tid */
        int fd = open("thread.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        pthread_t t;
        pthread_create(&t, NULL, thread_writer, &fd);
        pthread_join(t, NULL);
        write(fd, buf, 64);
        printf("%d\n", gettid());
        return 0;
    }
    if (!strcmp(mode, "signal")) {           /* dies by SIGKILL with a file written */
        int fd = open("sig.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write(fd, buf, 64);
        kill(getpid(), SIGKILL);
        return 0;
    }
    if (!strcmp(mode, "slow")) {             /* writes and syncs until killed; "done" 20 rounds after SIGUSR1 */
        int fd = open("slow.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        signal(SIGUSR1, on_usr1);
        printf("ready\n");
        fflush(stdout);
        for (int after = 0;; usleep(10000)) {
            write(fd, buf, 64);
            fsync(fd);
            if (asked && ++after == 20) { printf("done\n"); fflush(stdout); }
        }
    }
    if (!strcmp(mode, "spin")) {             /* only writes until killed: its run never ends by itself */
        int fd = open("spin.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        printf("ready\n");
        fflush(stdout);
        /* In place, so the file stays small however long it runs; each record
         * holds its own number, which tells the test how many were written
         * with no other syscall to end the run. */
        for (long n = 1;; n++) {
            snprintf(buf, sizeof buf, "%63ld", n);
            buf[63] = '\n';
            pwrite(fd, buf, 64, 0);
        }
    }
    if (!strcmp(mode, "badname")) {          /* a file name that is not UTF-8 */
        int fd = open("bad-\xff\xfe.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write(fd, buf, 64);
        close(fd);
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
