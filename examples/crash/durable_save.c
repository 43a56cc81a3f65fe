/* The durable save of examples/c/durable.c, then "saved" on stdout. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define LINES 500

int main(void) {
    FILE *f = fopen("record.txt.tmp", "w");
    if (!f) { perror("record.txt.tmp"); return 1; }
    for (int i = 0; i < LINES; i++)
        fprintf(f, "line %04d: the quick brown fox jumps over the lazy dog\n", i);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) { perror("fsync"); return 1; }
    if (fclose(f) != 0) { perror("fclose"); return 1; }
    if (rename("record.txt.tmp", "record.txt") != 0) { perror("rename"); return 1; }
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    if (dir < 0 || fsync(dir) != 0) { perror("fsync ."); return 1; }
    close(dir);
    puts("saved");
    fflush(stdout);
    return 0;
}
