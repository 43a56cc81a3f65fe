/* Sends between file writes and fdatasyncs (tests/test_send_runs.py): per
 * round a record written to FILE, then sends of varying sizes with send() on
 * a unix socketpair, with sendto(..., MSG_NOSIGNAL, NULL, 0) on a TCP loopback
 * connection, with sendto to an address on a UDP socket, and one write() on
 * the socketpair; an fdatasync every fourth round. After the last round, the
 * TCP connection shut for writing and one send on it that fails (EPIPE).
 * A thread drains the stream peers (reads are not traced). Prints the truth,
 * one line per socket: "<name> <fd> <sends> <bytes>" (sends that returned > 0),
 * and "socket-writes <fd> <calls> <bytes>". */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int peers[2];

static void *drain(void *arg) {
    (void)arg;
    char buf[65536];
    int open_peers = 2;
    struct pollfd p[2] = {{peers[0], POLLIN, 0}, {peers[1], POLLIN, 0}};
    while (open_peers) {
        if (poll(p, 2, -1) < 0) return NULL;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd >= 0 && p[i].revents) {
                if (read(p[i].fd, buf, sizeof buf) <= 0) {
                    p[i].fd = -1;
                    open_peers--;
                }
            }
        }
    }
    return NULL;
}

struct count { long sends, bytes; };

static void add(struct count *c, long ret) {
    if (ret <= 0) exit(1);
    c->sends++;
    c->bytes += ret;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long rounds = atol(argv[2]);
    int file = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int pair[2];
    if (file < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return 1;

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int listener = socket(AF_INET, SOCK_STREAM, 0), tcp = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0 || tcp < 0 || bind(listener, (void *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (void *)&addr, &len) != 0 || connect(tcp, (void *)&addr, sizeof addr) != 0)
        return 1;
    int accepted = accept(listener, NULL, NULL);
    struct sockaddr_in udp_addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    len = sizeof udp_addr;
    int udp_in = socket(AF_INET, SOCK_DGRAM, 0), udp = socket(AF_INET, SOCK_DGRAM, 0);
    if (accepted < 0 || udp_in < 0 || udp < 0 || bind(udp_in, (void *)&udp_addr, sizeof udp_addr) != 0 ||
        getsockname(udp_in, (void *)&udp_addr, &len) != 0)
        return 1;
    peers[0] = pair[1];
    peers[1] = accepted;
    pthread_t reader;
    if (pthread_create(&reader, NULL, drain, NULL) != 0) return 1;

    static char buf[4096];
    struct count unix_sends = {0}, tcp_sends = {0}, udp_sends = {0}, socket_writes = {0};
    for (long i = 0; i < rounds; i++) {
        if (write(file, buf, 100) != 100) return 1;
        for (long j = 0; j <= i % 5; j++)
            add(&unix_sends, send(pair[0], buf, 1 + (i * 7 + j * 131) % 3000, 0));
        for (long j = 0; j < 3; j++)
            add(&tcp_sends, sendto(tcp, buf, 1 + (i * 13 + j) % 500, MSG_NOSIGNAL, NULL, 0));
        for (long j = 0; j < 2; j++)
            add(&udp_sends, sendto(udp, buf, 1 + j * 40, 0, (void *)&udp_addr, sizeof udp_addr));
        add(&socket_writes, write(pair[0], buf, 10));
        if (i % 4 == 3 && fdatasync(file) != 0) return 1;
    }
    if (shutdown(tcp, SHUT_WR) != 0 || send(tcp, buf, 1, MSG_NOSIGNAL) != -1) return 1;
    shutdown(pair[0], SHUT_WR);
    pthread_join(reader, NULL);
    printf("unix %d %ld %ld\n", pair[0], unix_sends.sends, unix_sends.bytes);
    printf("tcp %d %ld %ld\n", tcp, tcp_sends.sends, tcp_sends.bytes);
    printf("udp %d %ld %ld\n", udp, udp_sends.sends, udp_sends.bytes);
    printf("socket-writes %d %ld %ld\n", pair[0], socket_writes.sends, socket_writes.bytes);
    return 0;
}
