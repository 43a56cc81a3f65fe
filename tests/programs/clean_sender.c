/* A sender with nothing unsynced beside a busy writer (tests/test_send_runs.py).
 * The parent sends one byte per round on a unix socketpair and makes no other
 * traced call in its loop (reads are not traced); its child, on each byte,
 * writes a record to DIR/log and fdatasyncs it, then answers on a pipe. In
 * round PUBLISH the child instead writes DIR/new.tmp and renames it over
 * DIR/target without a sync (an FS101 window opens), and on the next byte
 * fsyncs the file and DIR (the window closes): the parent's send in between is
 * an acknowledgement inside the window. The parent then pauses half a second
 * (an untraced sleep), for the analysis to see the window closed. Prints the truth:
 * "sends <fd> <calls> <bytes>". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(const char *dir, int sock, int answer, long publish) {
    char log_path[4096], tmp_path[4096], target_path[4096], record[64] = {0};
    snprintf(log_path, sizeof log_path, "%s/log", dir);
    snprintf(tmp_path, sizeof tmp_path, "%s/new.tmp", dir);
    snprintf(target_path, sizeof target_path, "%s/target", dir);
    int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644), published = -1;
    if (log < 0) _exit(1);
    char byte;
    for (long i = 0; read(sock, &byte, 1) == 1; i++) {
        if (i == publish) {
            published = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (published < 0 || write(published, record, sizeof record) != sizeof record ||
                rename(tmp_path, target_path) != 0)
                _exit(1);
        } else if (published >= 0) {
            int d = open(dir, O_RDONLY | O_DIRECTORY);
            if (d < 0 || fsync(published) != 0 || fsync(d) != 0) _exit(1);
            close(d);
            close(published);
            published = -1;
        } else if (write(log, record, sizeof record) != sizeof record || fdatasync(log) != 0) {
            _exit(1);
        }
        if (write(answer, "k", 1) != 1) _exit(1);
    }
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    long rounds = atol(argv[2]), publish = atol(argv[3]);
    int pair[2], back[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0 || pipe(back) != 0) return 1;
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        close(pair[0]);
        close(back[0]);
        child(argv[1], pair[1], back[1], publish);
    }
    close(pair[1]);
    close(back[1]);
    long calls = 0;
    char byte;
    for (long i = 0; i < rounds; i++) {
        if (send(pair[0], "g", 1, 0) != 1 || read(back[0], &byte, 1) != 1) return 1;
        calls++;
        if (i == publish + 1) usleep(500000);
    }
    int status;
    close(pair[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    printf("sends %d %ld %ld\n", pair[0], calls, calls);
    return 0;
}
