// --stacks: the test finds each call site's line by the marker comment on it.
// stacks [plain|thread|fork|loop]: save a record naively (no fsync), from
// main, from a second thread, from a forked child, or every 50 ms until
// killed (saying "done" once a whole save followed a SIGUSR1).
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void write_record(int fd, const char *text) {
    if (write(fd, text, strlen(text)) < 0)  // @write
        exit(1);
}

__attribute__((noinline)) static void save_naive(const char *tmp, const char *dst) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);  // @open
    if (fd < 0)
        exit(1);
    write_record(fd, "record\n");  // @record
    close(fd);
    if (rename(tmp, dst) != 0)  // @rename
        exit(1);
}

static volatile sig_atomic_t asked;

static void on_usr1(int signum) {
    (void)signum;
    asked = 1;
}

static void *in_thread(void *unused) {
    (void)unused;
    save_naive("t.tmp", "t.txt");  // @thread
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "plain";
    if (!strcmp(mode, "plain")) {
        save_naive("data.tmp", "data.txt");  // @main
    } else if (!strcmp(mode, "thread")) {
        pthread_t thread;
        pthread_create(&thread, NULL, in_thread, NULL);
        pthread_join(thread, NULL);
    } else if (!strcmp(mode, "fork")) {
        pid_t child = fork();
        if (child == 0) {
            save_naive("c.tmp", "c.txt");  // @child
            _exit(0);
        }
        waitpid(child, NULL, 0);
    } else if (!strcmp(mode, "loop")) {
        signal(SIGUSR1, on_usr1);
        printf("ready\n");
        fflush(stdout);
        for (int after = 0;; usleep(50000)) {
            save_naive("l.tmp", "l.txt");  // @loop
            if (asked && ++after == 2) { printf("done\n"); fflush(stdout); }   /* one whole save after it */
        }
    }
    return 0;
}
