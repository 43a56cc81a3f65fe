/* FS401: a record left in a stdio buffer when the process ends, or not.
 * MODE: _exit | sigterm | sigkill (bad: the record never reaches write()),
 *       fflush | fclose | exit (the record is written before the end). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    FILE *log = fopen("orders.log", "w");
    FILE *other = fopen("other.log", "w");   /* opened, written and closed: forgotten at fclose */
    fputs("other\n", other);
    fclose(other);
    fprintf(log, "order %d accepted\n", 42);
    if (!strcmp(mode, "fflush")) fflush(log);
    else if (!strcmp(mode, "fclose")) fclose(log);
    else if (!strcmp(mode, "exit")) exit(0);              /* exit() flushes stdio */
    else if (!strcmp(mode, "sigterm")) raise(SIGTERM);
    else if (!strcmp(mode, "sigkill")) raise(SIGKILL);
    _exit(0);
}
