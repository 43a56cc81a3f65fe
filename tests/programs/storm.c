/* A metadata storm: N files in DIR, each created, written, fsynced, closed
 * and renamed into place (five unfoldable events). In a tmpfs directory,
 * where fsync has nothing to wait for, it produces events several times
 * faster than fsaudit analyses them. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long n = atol(argv[1]);
    char tmp[4096], dst[4096];
    for (long i = 0; i < n; i++) {
        snprintf(tmp, sizeof tmp, "%s/%ld.tmp", argv[2], i);
        snprintf(dst, sizeof dst, "%s/%ld", argv[2], i);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "record\n", 7) != 7 || fsync(fd) != 0) return 1;
        close(fd);
        if (rename(tmp, dst) != 0) return 1;
    }
    return 0;
}
