/* The naive save of examples/c/naive.c, then "saved" on stdout. */
#include <stdio.h>

#define LINES 500

int main(void) {
    FILE *f = fopen("record.txt.tmp", "w");
    if (!f) { perror("record.txt.tmp"); return 1; }
    for (int i = 0; i < LINES; i++)
        fprintf(f, "line %04d: the quick brown fox jumps over the lazy dog\n", i);
    if (fclose(f) != 0) { perror("fclose"); return 1; }
    if (rename("record.txt.tmp", "record.txt") != 0) { perror("rename"); return 1; }
    puts("saved");
    fflush(stdout);
    return 0;
}
