/* A burst of N unfoldable events (fdatasync on one file), faster than user
 * space can drain a tiny ring buffer. Static, so that the only other events
 * are the few of its start and exit. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    int fd = open("burst.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (long i = 0; i < n; i++) fdatasync(fd);
    close(fd);
    return 0;
}
