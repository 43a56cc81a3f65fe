/* Benchmark workloads: each mode is one row of bench/run.py's table. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char buf[4096];

static void storm(long n) {                 /* n x 64-byte write() to one file */
    int fd = open("storm.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (long i = 0; i < n; i++) write(fd, buf, 64);
    close(fd);
}

/* ns per 64-byte write(), the storm's call, as the fastest and the 10th
   percentile of 500 chunks of 2000 writes (a chunk the CPU's other users did
   not preempt), into storm_ns.out: bench/write_ns.py. */
static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void storm_ns(void) {
    enum { CHUNKS = 500, WRITES = 2000 };
    static double ns[CHUNKS];
    int fd = open("storm.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int c = 0; c < CHUNKS; c++) {
        if (c % 50 == 0) {   /* back to empty: every chunk writes into the same few pages */
            ftruncate(fd, 0);
            lseek(fd, 0, SEEK_SET);
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < WRITES; i++) write(fd, buf, 64);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ns[c] = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / WRITES;
    }
    close(fd);
    qsort(ns, CHUNKS, sizeof ns[0], by_value);
    FILE *out = fopen("storm_ns.out", "w");
    fprintf(out, "%.1f %.1f\n", ns[0], ns[CHUNKS / 10]);
    fclose(out);
}

static void datasync(long mb) {             /* 4 KiB writes, fdatasync every 16 */
    int fd = open("datasync.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    long n = mb * 256;
    for (long i = 1; i <= n; i++) {
        write(fd, buf, 4096);
        if (i % 16 == 0) fdatasync(fd);
    }
    close(fd);
}

static void files(long n) {                 /* n files: write, fsync, rename */
    char tmp[64], dst[64];
    mkdir("files", 0755);
    for (long i = 0; i < n; i++) {
        snprintf(tmp, sizeof tmp, "files/%ld.tmp", i);
        snprintf(dst, sizeof dst, "files/%ld", i);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write(fd, buf, 100);
        fsync(fd);
        close(fd);
        rename(tmp, dst);
    }
}

static void synced(long n) {                /* n x 64-byte writes, 100 fsyncs, errors ignored */
    int fd = open("synced.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    long every = n / 100 ? n / 100 : 1;
    for (long i = 1; i <= n; i++) {
        write(fd, buf, 64);
        if (i % every == 0) fsync(fd);
    }
    close(fd);
}

static void started(void) {                 /* when main() began, CLOCK_MONOTONIC ns, to started.ns */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    FILE *f = fopen("started.ns", "w");
    fprintf(f, "%lld\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    fclose(f);
}

static long writes_per_thread;

static void *thread_writer(void *arg) {
    char name[64];
    snprintf(name, sizeof name, "t-%d-%ld.dat", getpid(), (long)arg);
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (long i = 0; i < writes_per_thread; i++) write(fd, buf, 64 + (i & 1));
    close(fd);
    return NULL;
}

static void threads(long procs, long per_proc, long writes) {   /* procs x threads writers */
    writes_per_thread = writes;
    for (long p = 0; p < procs; p++) {
        if (fork() == 0) {
            pthread_t t[64];
            for (long i = 0; i < per_proc; i++) pthread_create(&t[i], NULL, thread_writer, (void *)i);
            for (long i = 0; i < per_proc; i++) pthread_join(t[i], NULL);
            _exit(0);
        }
    }
    while (wait(NULL) > 0) {}
}

#define MIXED_FILES 72
static int mixed_fds[MIXED_FILES];
static long mixed_iterations;

static void *mixed_writer(void *arg) {      /* write, pwrite, writev in turn, each to the next file */
    long t = (long)arg;
    struct iovec iov[2] = {{buf, 32}, {buf, 32}};
    for (long i = 0; i < mixed_iterations; i++) {
        int fd = mixed_fds[(t + i) % MIXED_FILES];
        switch (i % 3) {
        case 0: write(fd, buf, 64); break;
        case 1: pwrite(fd, buf, 64, i * 64); break;
        default: writev(fd, iov, 2);
        }
    }
    return NULL;
}

/* procs x threads writers that each switch files at every call, so no two
 * calls in a row of a thread fold into one write run: one record per call. */
static void mixed(long procs, long per_proc, long iterations) {
    mixed_iterations = iterations;
    mkdir("mixed", 0755);
    for (long p = 0; p < procs; p++) {
        if (fork() == 0) {
            char name[64];
            for (int f = 0; f < MIXED_FILES; f++) {
                snprintf(name, sizeof name, "mixed/%d.dat", f);
                mixed_fds[f] = open(name, O_WRONLY | O_CREAT | O_APPEND, 0644);
            }
            pthread_t t[64];
            if (per_proc > 64) per_proc = 64;
            for (long i = 0; i < per_proc; i++) pthread_create(&t[i], NULL, mixed_writer, (void *)(p * per_proc + i));
            for (long i = 0; i < per_proc; i++) pthread_join(t[i], NULL);
            for (int f = 0; f < MIXED_FILES; f++) close(mixed_fds[f]);
            _exit(0);
        }
    }
    while (wait(NULL) > 0) {}
}

/* n commits as a database backend makes them (pgbench's records): append to a
   log with pwrite, fdatasync it, send the reply on a unix socket (read back). */
static void commits(long n) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) { perror("socketpair"); exit(1); }
    int fd = open("commits.log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (long i = 0; i < n; i++) {
        pwrite(fd, buf, 128, i * 128);
        fdatasync(fd);
        sendto(sv[0], buf, 64, 0, NULL, 0);
        recv(sv[1], buf + 2048, 64, 0);
    }
    close(fd);
}

int main(int argc, char **argv) {
    memset(buf, 'x', sizeof buf);
    const char *mode = argc > 1 ? argv[1] : "";
    long a = argc > 2 ? atol(argv[2]) : 0;
    if (!strcmp(mode, "storm")) storm(a);
    else if (!strcmp(mode, "storm_ns")) storm_ns();
    else if (!strcmp(mode, "datasync")) datasync(a);
    else if (!strcmp(mode, "files")) files(a);
    else if (!strcmp(mode, "threads")) threads(8, 8, a);
    else if (!strcmp(mode, "mixed")) mixed(argc > 3 ? atol(argv[3]) : 8, argc > 4 ? atol(argv[4]) : 8, a);
    else if (!strcmp(mode, "synced")) synced(a);
    else if (!strcmp(mode, "started")) started();
    else if (!strcmp(mode, "commits")) commits(a);
    else { fprintf(stderr, "modes: storm N | storm_ns | datasync MB | files N | threads WRITES | mixed ITERATIONS [PROCS THREADS] | "
                      "synced N | started | commits N\n"); return 2; }
    return 0;
}
