/* n files on unique paths, each written and renamed into place with no fsync:
   at least one finding per file, all from one call site and one directory. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    char tmp[64], dst[64], data[64] = "payload\n";
    mkdir("files", 0755);
    for (long i = 0; i < n; i++) {
        snprintf(tmp, sizeof tmp, "files/%ld.tmp", i);
        snprintf(dst, sizeof dst, "files/%ld", i);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, data, sizeof data) != sizeof data || close(fd) || rename(tmp, dst)) {
            perror(tmp);
            return 1;
        }
    }
    return 0;
}
