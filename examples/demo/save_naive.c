/* The classic unsafe save: write a temp file and rename it over the real
 * one, with no fsync of the data and none of the directory. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    const char *record = "{\"balance\": 100}\n";
    int fd = open("data.json.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    for (int i = 0; i < 1000; i++)
        if (write(fd, record, strlen(record)) < 0) { perror("write"); return 1; }
    if (close(fd) < 0) { perror("close"); return 1; }
    if (rename("data.json.tmp", "data.json") < 0) { perror("rename"); return 1; }
    printf("saved\n");
    return 0;
}
