/* Programs for the rule catalogue (tests/test_rules_live.py).
 *
 * usage: rules MODE [MODE...] [status=N]
 * Each MODE runs in the existing directory ./MODE (the test creates it, so the
 * directory itself is not "created by the tree"), and does one durability story,
 * entered by a relative chdir from the starting directory,
 * correct or not. Files are named after their role: *.tmp is renamed, *.dat stays.
 * status=N makes the program exit with N (default 0). Every syscall result that a
 * correct program would check is checked: a failure is reported on stderr and
 * turns the exit status to 100, so a broken scenario cannot pass silently.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static char buf[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
static int failed;

#define CHECK(expr) do { if ((long)(expr) < 0) { fprintf(stderr, "%s: %s: %s\n", mode_name, #expr, strerror(errno)); failed = 1; } } while (0)
static const char *mode_name = "";

static int create(const char *name, int extra) {
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | extra, 0644);
    CHECK(fd);
    return fd;
}

static void put(int fd, int times) {
    for (int i = 0; i < times; i++) CHECK(write(fd, buf, sizeof buf));
}

static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd);
    CHECK(fsync(fd));
    close(fd);
}

/* write NAME, optionally fsync it, close it */
static void write_file(const char *name, int times, int do_sync) {
    int fd = create(name, 0);
    put(fd, times);
    if (do_sync) CHECK(fsync(fd));
    CHECK(close(fd));
}

static void *thread_writer(void *arg) {
    put(*(int *)arg, 10);
    return NULL;
}

static void thread_story(int do_sync) {
    int fd = create("t.tmp", 0);
    pthread_t t;
    pthread_create(&t, NULL, thread_writer, &fd);
    pthread_join(t, NULL);
    if (do_sync) CHECK(fsync(fd));
    CHECK(close(fd));
    CHECK(rename("t.tmp", "t.dat"));
    sync_dir(".");
}

static void dirfd_story(int do_sync) {
    CHECK(mkdir("sub", 0755));
    sync_dir(".");
    int dir = open("sub", O_RDONLY | O_DIRECTORY);
    CHECK(dir);
    int fd = openat(dir, "t.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd);
    put(fd, 4);
    if (do_sync) CHECK(fsync(fd));
    CHECK(close(fd));
    CHECK(renameat(dir, "t.tmp", dir, "t.dat"));
    CHECK(fsync(dir));
    close(dir);
}

/* the test's "ok" to a peer: socket write before (bad) or after (good) the fsync */
static void ack_story(int sock, int do_sync_first) {
    int fd = create("data.dat", 0);
    put(fd, 4);
    if (do_sync_first) CHECK(fsync(fd));
    CHECK(send(sock, "ok", 2, 0));
    if (!do_sync_first) CHECK(fsync(fd));
    CHECK(close(fd));
    sync_dir(".");
}

static void tcp_pair(int *client, int *server) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(listener);
    CHECK(bind(listener, (struct sockaddr *)&addr, sizeof addr));
    CHECK(listen(listener, 1));
    CHECK(getsockname(listener, (struct sockaddr *)&addr, &len));
    *client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(*client, (struct sockaddr *)&addr, sizeof addr));
    *server = accept(listener, NULL, NULL);
    CHECK(*server);
    close(listener);
}

/* a 4096-byte file made durable, then changed through a shared writable mapping */
static void mmap_story(int do_msync) {
    char page[4096];
    memset(page, 'a', sizeof page);
    int fd = open("map.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd);
    CHECK(write(fd, page, sizeof page));
    CHECK(fsync(fd));
    sync_dir(".");
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); failed = 1; return; }
    memcpy(p, "changed", 7);
    if (do_msync) CHECK(msync(p, 4096, MS_SYNC));
    CHECK(munmap(p, 4096));
    CHECK(close(fd));
}

static void odirect_story(int extra, int do_sync) {
    void *page;
    if (posix_memalign(&page, 4096, 4096)) { failed = 1; return; }
    memset(page, 'd', 4096);
    int fd = create("direct.dat", O_DIRECT | extra);
    CHECK(write(fd, page, 4096));
    if (do_sync) CHECK(fdatasync(fd));
    CHECK(close(fd));
    sync_dir(".");
    free(page);
}

/* The starting directory, absolute: each MODE returns to it, then enters its
 * own directory by a relative chdir (the tracer must follow both). */
static char base[4096];

static void run(const char *mode) {
    mode_name = mode;
    if (chdir(base) < 0 || chdir(mode) < 0) { perror(mode); exit(101); }

    /* FS101: write temp, rename over target: without (bad) and with (ok) fsync */
    if (!strcmp(mode, "fs101") || !strcmp(mode, "fs101_ok")) {
        write_file("a.tmp", 4, !strcmp(mode, "fs101_ok"));
        CHECK(rename("a.tmp", "a.dat"));
        sync_dir(".");
    } else if (!strcmp(mode, "link")) {          /* FS101 via link(): publishes unsynced data too */
        write_file("l.tmp", 4, 0);
        CHECK(link("l.tmp", "l.dat"));
        CHECK(unlink("l.tmp"));
        sync_dir(".");
    } else if (!strcmp(mode, "dup_ok")) {        /* written through dup'ed fds, fsynced through the original */
        int fd = create("d.tmp", 0);
        int d = dup(fd), d2 = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        CHECK(d);
        CHECK(d2);
        put(d, 2);
        put(d2, 2);
        close(d);
        close(d2);
        CHECK(fsync(fd));
        CHECK(close(fd));
        CHECK(rename("d.tmp", "d.dat"));
        sync_dir(".");
    } else if (!strcmp(mode, "thread") || !strcmp(mode, "thread_ok")) {
        thread_story(!strcmp(mode, "thread_ok"));  /* a thread writes, main syncs (or not) after join */
    } else if (!strcmp(mode, "child")) {
        /* the parent writes p.tmp and fsyncs it; a child writes c.tmp and exits;
         * the parent renames both: only c.tmp is published dirty */
        write_file("p.tmp", 4, 1);
        pid_t pid = fork();
        if (pid == 0) { write_file("c.tmp", 4, 0); _exit(0); }
        int status;
        waitpid(pid, &status, 0);
        CHECK(rename("p.tmp", "p.dat"));
        CHECK(rename("c.tmp", "c.dat"));
        sync_dir(".");
    } else if (!strcmp(mode, "dirfd") || !strcmp(mode, "dirfd_ok")) {
        dirfd_story(!strcmp(mode, "dirfd_ok"));    /* openat/renameat relative to a directory fd */
    } else if (!strcmp(mode, "osync_ok") || !strcmp(mode, "dsync_ok")) {
        int fd = create("s.tmp", !strcmp(mode, "osync_ok") ? O_SYNC : O_DSYNC);
        put(fd, 4);
        CHECK(close(fd));
        CHECK(rename("s.tmp", "s.dat"));
        sync_dir(".");
    } else if (!strcmp(mode, "rwf_ok")) {        /* pwritev2(RWF_DSYNC): each write is its own barrier */
        int fd = create("r.tmp", 0);
        struct iovec iov = {buf, sizeof buf};
        for (int i = 0; i < 4; i++) CHECK(pwritev2(fd, &iov, 1, i * (off_t)sizeof buf, RWF_DSYNC));
        CHECK(close(fd));
        CHECK(rename("r.tmp", "r.dat"));
        sync_dir(".");

    /* FS102: the directory is not fsynced after the rename */
    } else if (!strcmp(mode, "fs102")) {
        write_file("a.tmp", 4, 1);
        CHECK(rename("a.tmp", "a.dat"));
    } else if (!strcmp(mode, "fs102_before")) {  /* a dir fsync before the rename does not count */
        write_file("a.tmp", 4, 1);
        sync_dir(".");
        CHECK(rename("a.tmp", "a.dat"));
    } else if (!strcmp(mode, "cross") || !strcmp(mode, "cross_ok")) {
        /* rename from ./src to ./dst: syncing only dst leaves src's entry pending */
        CHECK(mkdir("src", 0755));
        CHECK(mkdir("dst", 0755));
        sync_dir(".");
        write_file("src/x.tmp", 4, 1);
        CHECK(rename("src/x.tmp", "dst/x.dat"));
        sync_dir("dst");
        if (!strcmp(mode, "cross_ok")) sync_dir("src");

    /* FS103: a durable new file whose directory entry is not */
    } else if (!strcmp(mode, "fs103") || !strcmp(mode, "fs103_ok")) {
        write_file("new.dat", 4, 1);
        if (!strcmp(mode, "fs103_ok")) sync_dir(".");

    /* FS104: unlink after durable work, directory not synced after it */
    } else if (!strcmp(mode, "fs104") || !strcmp(mode, "fs104_ok")) {
        write_file("journal.dat", 4, 1);
        sync_dir(".");
        CHECK(unlink("journal.dat"));
        if (!strcmp(mode, "fs104_ok")) sync_dir(".");
    } else if (!strcmp(mode, "fs104_nointent")) { /* no fsync anywhere here: not intent-gated in */
        write_file("scratch.dat", 4, 0);
        CHECK(unlink("scratch.dat"));

    /* FS105: data still dirty at exit */
    } else if (!strcmp(mode, "fs105") || !strcmp(mode, "fs105_ok")) {
        write_file("out.dat", 4, !strcmp(mode, "fs105_ok"));
        if (!strcmp(mode, "fs105_ok")) sync_dir(".");

    /* FS106: "ok" sent to a peer before the fsync */
    } else if (!strcmp(mode, "ack_pair") || !strcmp(mode, "ack_pair_ok")) {
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
        ack_story(sv[0], !strcmp(mode, "ack_pair_ok"));
        close(sv[0]);
        close(sv[1]);
    } else if (!strcmp(mode, "ack_tcp") || !strcmp(mode, "ack_tcp_ok")) {
        int client, server;
        tcp_pair(&client, &server);
        ack_story(server, !strcmp(mode, "ack_tcp_ok"));
        char reply[2];
        CHECK(read(client, reply, 2));
        close(client);
        close(server);

    /* FS107: an existing non-empty file truncated and rewritten in place */
    } else if (!strcmp(mode, "fs107") || !strcmp(mode, "fs107_ftruncate") || !strcmp(mode, "fs107_ok")) {
        write_file("config.dat", 4, 1);
        sync_dir(".");
        /* The tracer counts a file born up to 10 ms before an O_CREAT|O_TRUNC open as
         * created by it (coarse timestamps): let the file be older than that. */
        usleep(50000);
        if (!strcmp(mode, "fs107")) {
            write_file("config.dat", 2, 1);      /* O_TRUNC on the existing file */
        } else if (!strcmp(mode, "fs107_ftruncate")) {
            int fd = open("config.dat", O_WRONLY);
            CHECK(fd);
            CHECK(ftruncate(fd, 0));
            put(fd, 2);
            CHECK(fsync(fd));
            CHECK(close(fd));
        } else {
            write_file("config.tmp", 2, 1);
            CHECK(rename("config.tmp", "config.dat"));
            sync_dir(".");
        }

    /* FS107 twins: a file the tree created empty, rewritten through O_TRUNC; the editor's
     * save (no O_TRUNC: ftruncate(fd, 0)) of config.dat, which the test made beforehand */
    } else if (!strcmp(mode, "fs107_empty")) {
        CHECK(close(create("config.dat", 0)));
        usleep(50000);                           /* older than the tracer's 10 ms "created" slack */
        write_file("config.dat", 2, 1);
        sync_dir(".");
    } else if (!strcmp(mode, "fs107_editor")) {
        int fd = open("config.dat", O_WRONLY);
        CHECK(fd);
        CHECK(ftruncate(fd, 0));
        put(fd, 2);
        CHECK(fsync(fd));
        CHECK(close(fd));

    /* FS103: a process opens with O_CREAT the file another process created a moment
     * before and whose directory it synced: no create of its own */
    } else if (!strcmp(mode, "fs103_other")) {
        pid_t child = fork();
        if (child == 0) {
            CHECK(close(create("shared.dat", O_EXCL)));
            sync_dir(".");
            _exit(failed ? 100 : 0);
        }
        int status;
        CHECK(waitpid(child, &status, 0));
        if (!WIFEXITED(status) || WEXITSTATUS(status)) failed = 1;
        int fd = open("shared.dat", O_RDWR | O_CREAT, 0644);
        CHECK(fd);
        put(fd, 1);
        CHECK(fsync(fd));
        CHECK(close(fd));

    /* FS103: a segment made durable in wal.tmp/, which is renamed to wal/ and whose new
     * entry is never synced (fs103_moved_ok syncs it) */
    } else if (!strcmp(mode, "fs103_moved") || !strcmp(mode, "fs103_moved_ok")) {
        CHECK(mkdir("wal.tmp", 0755));
        write_file("wal.tmp/seg", 2, 1);
        sync_dir("wal.tmp");
        CHECK(rename("wal.tmp", "wal"));
        if (!strcmp(mode, "fs103_moved_ok")) sync_dir(".");

    /* FS102: a name renamed again (x.tmp-pack -> x.pack) is reported by its final name */
    } else if (!strcmp(mode, "fs102_twice")) {
        write_file("tmp_pack", 2, 1);
        CHECK(rename("tmp_pack", "x.tmp-pack"));
        CHECK(rename("x.tmp-pack", "x.pack"));

    /* FS104 twins: removing a file the tree never synced (obsolete.dat, which the test
     * made beforehand, and a scratch file) beside a synced one commits nothing */
    } else if (!strcmp(mode, "fs104_obsolete")) {
        write_file("kept.dat", 2, 1);
        sync_dir(".");
        CHECK(unlink("obsolete.dat"));
        write_file("scratch.dat", 2, 0);
        CHECK(unlink("scratch.dat"));

    /* FS105 twins: no byte left dirty: a lock file truncated by O_TRUNC and never
     * written, and ftruncate to the size a synced file already has */
    } else if (!strcmp(mode, "fs105_nobytes")) {
        CHECK(close(create("app.lock", 0)));
        usleep(50000);
        CHECK(close(create("app.lock", 0)));
        int fd = create("sized.dat", 0);
        put(fd, 4);
        CHECK(fdatasync(fd));
        CHECK(ftruncate(fd, 4 * sizeof buf));
        CHECK(close(fd));
        sync_dir(".");

    /* Findings made at the end name the image that made the call: this one, not the
     * program it execs last (the mode must be the last one) */
    } else if (!strcmp(mode, "exec_after")) {
        write_file("a.tmp", 2, 1);
        CHECK(rename("a.tmp", "a.dat"));
        write_file("left.dat", 1, 0);
        if (chdir(base) < 0) exit(101);
        execl("/bin/true", "true", (char *)NULL);
        CHECK(-1);

    /* FS301: sync_file_range as the only barrier */
    } else if (!strcmp(mode, "fs301") || !strcmp(mode, "fs301_ok")) {
        int fd = create("range.dat", 0);
        put(fd, 4);
        CHECK(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
        if (!strcmp(mode, "fs301_ok")) CHECK(fdatasync(fd));
        CHECK(close(fd));
        sync_dir(".");

    /* FS302: O_DIRECT writes never made durable */
    } else if (!strcmp(mode, "fs302")) {
        odirect_story(0, 0);
    } else if (!strcmp(mode, "fs302_ok")) {
        odirect_story(0, 1);
    } else if (!strcmp(mode, "fs302_dsync_ok")) {
        odirect_story(O_DSYNC, 0);

    /* FS303: a MAP_SHARED PROT_WRITE mapping unmapped without msync */
    } else if (!strcmp(mode, "fs303") || !strcmp(mode, "fs303_ok")) {
        mmap_story(!strcmp(mode, "fs303_ok"));

    /* FS304: sync() / syncfs() as the barrier */
    } else if (!strcmp(mode, "fs304_sync") || !strcmp(mode, "fs304_syncfs")) {
        int fd = create("whole.dat", 0);
        put(fd, 4);
        if (!strcmp(mode, "fs304_sync")) sync();
        else CHECK(syncfs(fd));
        CHECK(close(fd));

    /* FS901: io_uring (or, where the kernel forbids it, Linux AIO) */
    } else if (!strcmp(mode, "fs901")) {
        struct io_uring_params params;
        memset(&params, 0, sizeof params);
        long ring = syscall(__NR_io_uring_setup, 8, &params);
        if (ring >= 0) {
            fprintf(stderr, "io_uring\n");
            close(ring);
        } else {
            aio_context_t ctx = 0;
            CHECK(syscall(__NR_io_setup, 8, &ctx));
            fprintf(stderr, "aio\n");
            syscall(__NR_io_destroy, ctx);
        }
    } else if (!strcmp(mode, "fs901_failed")) {  /* an io_uring_setup the kernel refuses is no I/O */
        struct io_uring_params params;
        memset(&params, 0, sizeof params);
        if (syscall(__NR_io_uring_setup, 0, &params) >= 0) { fprintf(stderr, "io_uring_setup(0) worked\n"); failed = 1; }

    /* 200 correct atomic replaces in a row */
    } else if (!strcmp(mode, "replace200")) {
        for (int i = 0; i < 200; i++) {
            write_file("state.tmp", 1, 1);
            CHECK(rename("state.tmp", "state.dat"));
            sync_dir(".");
        }

    /* FS203 on a full filesystem: ./full is a tiny tmpfs; errors ignored, fsync, exit 0 */
    } else if (!strcmp(mode, "enospc") || !strcmp(mode, "enospc_ok")) {
        char chunk[4096];
        memset(chunk, 'x', sizeof chunk);
        int fd = create("full/big.dat", 0);
        int error = 0;
        for (int i = 0; i < 32; i++) {
            ssize_t n = write(fd, chunk, sizeof chunk);
            if (n != (ssize_t)sizeof chunk) error = 1;
        }
        if (!strcmp(mode, "enospc_ok") && error) { fprintf(stderr, "disk full\n"); exit(1); }
        CHECK(fsync(fd));
        CHECK(close(fd));
        sync_dir("full");
        if (!error) { fprintf(stderr, "the filesystem never filled up\n"); failed = 1; }
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        exit(102);
    }
    if (chdir(base) < 0) exit(101);
}

int main(int argc, char **argv) {
    int status = 0;
    if (!getcwd(base, sizeof base)) return 101;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "status=", 7)) status = atoi(argv[i] + 7);
        else run(argv[i]);
    }
    return failed ? 100 : status;
}
