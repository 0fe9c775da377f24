/*
 * tcpblast: bulk TCP throughput from one end to the other (busybox has no iperf).
 *
 *   tcpblast sink <port>                  accepts one connection on 0.0.0.0:<port>, reads it to its end, exits
 *   tcpblast send <ipv4> <port> <bytes>   sends <bytes> of zeros, closes its sending side, waits for the sink to
 *                                         close (so every byte was read), and prints
 *                                         TCPBLAST bytes=<n> ms=<elapsed from connect to the sink's close>
 * Exit status 1 (and a message on stderr) on any socket error or a short transfer.
 * Built static by bench/virtio-io.sh: the guest sends to the lab's outer VM (virtio-net guest -> host).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];

static int die(const char *what)
{
    fprintf(stderr, "tcpblast: %s: %s\n", what, strerror(errno));
    return 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int sink(int port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (ls < 0) return die("socket");
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0) return die("bind");
    if (listen(ls, 1) != 0) return die("listen");
    int s = accept(ls, NULL, NULL);
    if (s < 0) return die("accept");
    for (;;) {
        ssize_t n = read(s, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return die("read");
        }
    }
    close(s);
    close(ls);
    return 0;
}

static int send_bytes(const char *ip, int port, long long bytes)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
        fprintf(stderr, "tcpblast: '%s' is not an IPv4 address\n", ip);
        return 2;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return die("socket");
    uint64_t t0 = now_ns();
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) return die("connect");
    long long left = bytes;
    while (left > 0) {
        ssize_t n = write(s, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return die("write");
        }
        left -= n;
    }
    if (shutdown(s, SHUT_WR) != 0) return die("shutdown");
    while (read(s, buf, sizeof buf) > 0) {
    }
    uint64_t ms = (now_ns() - t0) / 1000000u;
    close(s);
    printf("TCPBLAST bytes=%lld ms=%llu\n", bytes, (unsigned long long)ms);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "sink") == 0) return sink(atoi(argv[2]));
    if (argc == 5 && strcmp(argv[1], "send") == 0) return send_bytes(argv[2], atoi(argv[3]), atoll(argv[4]));
    fprintf(stderr, "usage: %s sink <port> | send <ipv4> <port> <bytes>\n", argv[0]);
    return 2;
}
