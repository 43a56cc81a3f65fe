/* A non-main thread execs: the kernel kills every other thread (the main one
 * included) and gives the exec'ing thread the process's id.
 *   threads_exec exec   main thread: 3 writes to before.dat, then waits;
 *                       its second thread: 2 writes to thread.dat, then execs
 *                       this program again as `threads_exec save`.
 *   threads_exec save   writes data.tmp, renames it to data.dat without any
 *                       fsync (FS101), exits 7. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char record[100];
static char *self;
static pthread_barrier_t written;

static void *exec_self(void *arg) {
    int fd = open("thread.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, record, sizeof(record));
    write(fd, record, sizeof(record));
    pthread_barrier_wait(&written);   /* the main thread's writes are done: its run is pending */
    char *argv[] = {self, "save", NULL};
    execv(self, argv);
    perror("execv");
    _exit(99);
}

int main(int argc, char **argv) {
    memset(record, 'x', sizeof(record));
    self = argv[0];
    if (argc > 1 && !strcmp(argv[1], "save")) {
        int fd = open("data.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        for (int i = 0; i < 5; i++) write(fd, record, sizeof(record));
        close(fd);
        rename("data.tmp", "data.dat");
        return 7;
    }
    pthread_barrier_init(&written, NULL, 2);
    int fd = open("before.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pthread_t thread;
    pthread_create(&thread, NULL, exec_self, NULL);
    for (int i = 0; i < 3; i++) write(fd, record, sizeof(record));
    pthread_barrier_wait(&written);
    for (;;) pause();   /* killed by the other thread's exec */
}
