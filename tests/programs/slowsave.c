/* A slow unsafe save for the live view: CHUNKS x 4 KiB written to
 * data.json.tmp, one every PERIOD ms with a progress line on stdout, then
 * renamed over data.json with no fsync (FS101), then LINGER ms before exit.
 * CHUNKS 0 writes chunks until killed, for a test that decides when it ends.
 *
 *   slowsave [CHUNKS [PERIOD_MS [LINGER_MS]]]     (default 12 250 2000)
 *
 * The progress line matters: a thread's writes to one fd fold into a run
 * that reaches fsaudit when the thread makes its next traced syscall, and
 * nanosleep is not traced; the write to stdout is. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    int chunks = argc > 1 ? atoi(argv[1]) : 12;
    long period = argc > 2 ? atol(argv[2]) : 250, linger = argc > 3 ? atol(argv[3]) : 2000;
    static char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    setvbuf(stdout, NULL, _IOLBF, 0);       /* one write per line, also when stdout is a file */
    int fd = open("data.json.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    for (int i = 1; chunks == 0 || i <= chunks; i++) {
        if (write(fd, chunk, sizeof chunk) != sizeof chunk) { perror("write"); return 1; }
        printf("chunk %d of %d\n", i, chunks);
        pause_ms(period);
    }
    if (close(fd) < 0) { perror("close"); return 1; }
    if (rename("data.json.tmp", "data.json") < 0) { perror("rename"); return 1; }
    printf("renamed\n");
    pause_ms(linger);
    printf("done\n");
    return 0;
}
