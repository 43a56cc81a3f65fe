/* Files whose names a report must not print raw (tests/test_escaping.py).
 *
 * usage: names
 * In the cwd, for each hostile name: write NAME.tmp, rename it over NAME
 * without an fsync (a finding that names both), and leave it there. The
 * names carry a terminal colour sequence, a newline that would forge a
 * report line, a bell, and bytes that are not UTF-8. Exit status 100 when
 * a call fails, so a broken run cannot pass silently.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *names[] = {
    "\x1b[31mred",
    "line\n  FS999 forged-finding: not from fsaudit",
    "bell\x07",
    "\xff\xfe",
};

int main(void) {
    int failed = 0;
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        char tmp[128];
        snprintf(tmp, sizeof tmp, "%s.tmp", names[i]);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "data\n", 5) != 5 || close(fd) != 0 || rename(tmp, names[i]) != 0) {
            perror(tmp);
            failed = 1;
        }
    }
    return failed ? 100 : 0;
}
