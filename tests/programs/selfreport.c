/* selfreport FD STATUS [PATH...]: writes to fd FD one JSON document of what
 * this process was given by whoever started it, then exits with STATUS.
 *
 * Everything is read before anything is opened or written: argv, the
 * environment, each open fd (its target and /proc/self/fdinfo), cwd, the
 * /proc/self/status lines that describe inherited state (umask, ids,
 * signal dispositions and mask, capabilities, seccomp, affinity),
 * /proc/self/limits, nice, oom_score_adj, personality, whether 0-2 are
 * terminals, and how its process group and session relate to its parent's
 * and to its controlling terminal. Then, for each PATH, whether it can be
 * opened for reading and for writing ("ok" or the errno's name).
 * Written in C: an interpreter would change signal dispositions at start-up. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char out[1 << 20];
static size_t used;

static void put(const char *s) {
    size_t n = strlen(s);
    if (used + n >= sizeof out) {
        fputs("selfreport: report too large\n", stderr);
        exit(120);
    }
    memcpy(out + used, s, n);
    used += n;
}

static void putf(const char *format, long long value) {
    char buf[64];
    snprintf(buf, sizeof buf, format, value);
    put(buf);
}

/* A JSON string; bytes that are not printable ASCII as \u00XX (one per byte). */
static void str(const char *s) {
    put("\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char buf[8];
        if (*p == '"' || *p == '\\') {
            buf[0] = '\\', buf[1] = (char)*p, buf[2] = 0;
        } else if (*p < 0x20 || *p >= 0x7f) {
            snprintf(buf, sizeof buf, "\\u%04x", *p);
        } else {
            buf[0] = (char)*p, buf[1] = 0;
        }
        put(buf);
    }
    put("\"");
}

/* A file's lines as a JSON array, whitespace runs squeezed to one space;
 * with prefixes, only the lines that start with one of them. */
static void lines(const char *path, const char *const *prefixes) {
    FILE *f = fopen(path, "re");
    char line[4096];
    int first = 1;
    put("[");
    while (f && fgets(line, sizeof line, f)) {
        char squeezed[4096];
        size_t n = 0;
        int wanted = prefixes == NULL;
        for (const char *const *p = prefixes; p && *p && !wanted; p++)
            wanted = strncmp(line, *p, strlen(*p)) == 0;
        if (!wanted)
            continue;
        for (const char *c = line; *c && *c != '\n'; c++) {
            if (*c == ' ' || *c == '\t') {
                if (n && squeezed[n - 1] != ' ')
                    squeezed[n++] = ' ';
            } else {
                squeezed[n++] = *c;
            }
        }
        while (n && squeezed[n - 1] == ' ')
            n--;
        squeezed[n] = 0;
        put(first ? "" : ", ");
        str(squeezed);
        first = 0;
    }
    if (f)
        fclose(f);
    put("]");
}

static const char *const STATUS_FIELDS[] = {
    "Umask:", "Uid:", "Gid:", "Groups:", "SigPnd:", "ShdPnd:", "SigBlk:", "SigIgn:", "SigCgt:",
    "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:",
    "Cpus_allowed_list:", "Mems_allowed_list:", NULL};

static void fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *entry;
    int first = 1;
    put("{");
    while (dir && (entry = readdir(dir))) {
        char link[300], info[300], target[4096];
        ssize_t n;
        if (entry->d_name[0] == '.' || atoi(entry->d_name) == dirfd(dir))
            continue;
        snprintf(link, sizeof link, "/proc/self/fd/%s", entry->d_name);
        snprintf(info, sizeof info, "/proc/self/fdinfo/%s", entry->d_name);
        n = readlink(link, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = 0;
        put(first ? "" : ", ");
        str(entry->d_name);
        put(": {\"target\": ");
        str(target);
        put(", \"fdinfo\": ");
        lines(info, NULL);
        put("}");
        first = 0;
    }
    if (dir)
        closedir(dir);
    put("}");
}

/* pgrp, session, tty_nr and tpgid: fields 5-8 of /proc/self/stat, after the command name. */
static void stat_fields(long long *pgrp, long long *session, long long *tty_nr, long long *tpgid) {
    char buf[4096] = "";
    FILE *f = fopen("/proc/self/stat", "re");
    const char *after;
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = 0;
        fclose(f);
    }
    after = strrchr(buf, ')');
    if (!after || sscanf(after + 2, "%*c %*d %lld %lld %lld %lld", pgrp, session, tty_nr, tpgid) != 4)
        *pgrp = *session = *tty_nr = *tpgid = -1;
}

static void access_result(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        str("ok");
    } else {
        str(strerrorname_np(errno));
    }
}

int main(int argc, char **argv, char **envp) {
    char cwd[4096];
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid, groups[256];
    int ngroups;
    long long pgrp, session, tty_nr, tpgid;
    pid_t ppid = getppid();

    if (argc < 3) {
        fputs("usage: selfreport FD STATUS [PATH...]\n", stderr);
        return 120;
    }
    put("{\"argv\": [");
    for (int i = 0; i < argc; i++) {
        put(i ? ", " : "");
        str(argv[i]);
    }
    put("], \"environ\": [");
    for (char **e = envp; *e; e++) {
        put(e == envp ? "" : ", ");
        str(*e);
    }
    put("], \"fds\": ");
    fds();
    put(", \"cwd\": ");
    str(getcwd(cwd, sizeof cwd) ? cwd : "");
    put(", \"status\": ");
    lines("/proc/self/status", STATUS_FIELDS);
    put(", \"limits\": ");
    lines("/proc/self/limits", NULL);
    put(", \"oom_score_adj\": ");
    lines("/proc/self/oom_score_adj", NULL);
    put(", \"personality\": ");
    lines("/proc/self/personality", NULL);
    errno = 0;
    putf(", \"nice\": %lld", getpriority(PRIO_PROCESS, 0));
    getresuid(&ruid, &euid, &suid);
    getresgid(&rgid, &egid, &sgid);
    putf(", \"uid\": [%lld", ruid);
    putf(", %lld", euid);
    putf(", %lld]", suid);
    putf(", \"gid\": [%lld", rgid);
    putf(", %lld", egid);
    putf(", %lld]", sgid);
    ngroups = getgroups(256, groups);
    put(", \"groups\": [");
    for (int i = 0; i < ngroups; i++)
        putf(i ? ", %lld" : "%lld", groups[i]);
    put("], \"isatty\": [");
    for (int fd = 0; fd < 3; fd++) {
        put(fd ? ", " : "");
        put(isatty(fd) ? "true" : "false");
    }
    stat_fields(&pgrp, &session, &tty_nr, &tpgid);
    putf("], \"pid\": %lld", getpid());
    putf(", \"ppid\": %lld", ppid);
    put(", \"process_group_is_own\": ");
    put(pgrp == getpid() ? "true" : "false");
    put(", \"process_group_is_parents\": ");
    put(pgrp == getpgid(ppid) ? "true" : "false");
    put(", \"session_is_parents\": ");
    put(session == getsid(ppid) ? "true" : "false");
    putf(", \"controlling_terminal\": %lld", tty_nr);
    put(", \"in_terminal_foreground\": ");
    put(tty_nr != 0 && tpgid == pgrp ? "true" : "false");
    put(", \"opens\": {");
    for (int i = 3; i < argc; i++) {
        put(i > 3 ? ", " : "");
        str(argv[i]);
        put(": {\"read\": ");
        access_result(argv[i], O_RDONLY);
        put(", \"write\": ");
        access_result(argv[i], O_WRONLY);
        put("}");
    }
    put("}}\n");

    for (size_t done = 0; done < used;) {
        ssize_t n = write(atoi(argv[1]), out + done, used - done);
        if (n < 0) {
            perror("selfreport: write");
            return 121;
        }
        done += (size_t)n;
    }
    return atoi(argv[2]);
}
