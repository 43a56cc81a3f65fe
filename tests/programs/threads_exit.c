/* The process outlives its main thread, or ends while a thread still runs.
 *   threads_exit main_exits N   the main thread opens log.dat and calls
 *                               pthread_exit; once it is gone, 2 threads
 *                               append N records of 100 bytes each; the last
 *                               one fsyncs and exits 3.
 *   threads_exit exit_running   a thread writes 4 records to busy.dat and
 *                               blocks; the main thread exits 5 meanwhile. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char record[100];
static int fd;
static long records;
static pthread_t main_thread, first;
static pthread_barrier_t barrier;

/* The main thread is a zombie once its exit is complete: its tracepoints have run. */
static void wait_main_gone(void) {
    pthread_join(main_thread, NULL);
    char path[64], stat[256];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", getpid());
    for (;;) {
        int f = open(path, O_RDONLY);
        ssize_t n = f < 0 ? -1 : read(f, stat, sizeof(stat) - 1);
        if (f >= 0) close(f);
        if (n <= 0) return;   /* reaped: gone as well */
        stat[n] = 0;
        char *state = strrchr(stat, ')');
        if (state && state[2] == 'Z') return;
        sched_yield();
    }
}

static void append(void) {
    for (long i = 0; i < records; i++) write(fd, record, sizeof(record));
}

static void *first_writer(void *arg) {
    pthread_barrier_wait(&barrier);
    append();
    return NULL;
}

static void *last_writer(void *arg) {
    wait_main_gone();
    pthread_barrier_wait(&barrier);
    append();
    pthread_join(first, NULL);
    fsync(fd);
    exit(3);
}

static void *busy_writer(void *arg) {
    for (int i = 0; i < 4; i++) write(fd, record, sizeof(record));
    pthread_barrier_wait(&barrier);
    for (;;) pause();
}

int main(int argc, char **argv) {
    memset(record, 'r', sizeof(record));
    main_thread = pthread_self();
    pthread_barrier_init(&barrier, NULL, 2);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "main_exits")) {
        records = argc > 2 ? atol(argv[2]) : 1000;
        fd = open("log.dat", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        pthread_t last;
        pthread_create(&first, NULL, first_writer, NULL);
        pthread_create(&last, NULL, last_writer, NULL);
        pthread_exit(NULL);
    }
    if (!strcmp(mode, "exit_running")) {
        fd = open("busy.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        pthread_t busy;
        pthread_create(&busy, NULL, busy_writer, NULL);
        pthread_barrier_wait(&barrier);
        exit(5);
    }
    return 2;
}
