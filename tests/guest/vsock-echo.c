/*
 * vsock-echo: a tiny AF_VSOCK stream tool for the lab guest (busybox has none).
 *
 *   vsock-echo listen PORT [1]        accept connections on PORT, one at a time, and echo each one's bytes
 *                                     back until it closes; with "1" serve a single connection and exit
 *   vsock-echo connect CID PORT       connect to CID:PORT (the host is CID 2), copy stdin to the connection
 *                                     (half-closing it at end of input) and the connection to stdout until
 *                                     the peer closes
 * The host side of the VMM's userspace vsock, over its Unix sockets:
 *   vsock-echo uds-listen PATH [1]    like listen, on the Unix socket PATH (the VMM connects guest requests for
 *                                     host port P to <uds-path>_P)
 *   vsock-echo uds-connect PATH PORT  connect to the VMM's uds-path, ask for guest PORT ("CONNECT PORT\n"),
 *                                     expect "OK ...\n", then copy like connect
 * And a plain Unix stream client, for the VMM's socket chardevs (a serial console, say):
 *   vsock-echo uds-pipe PATH          connect to the Unix socket PATH and copy like connect
 *
 * Build: gcc -static -O2 -o vsock-echo vsock-echo.c
 * Exit status: 0 on success, 1 on a usage or socket error (the error is printed on stderr).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

static int fail(const char *what)
{
    fprintf(stderr, "vsock-echo: %s: %s\n", what, strerror(errno));
    return 1;
}

/* Writes all of buf, retrying short writes; -1 on error. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static unsigned long parse(const char *text, const char *what, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || *text == '\0' || *end != '\0' || v > max) {
        fprintf(stderr, "vsock-echo: bad %s '%s'\n", what, text);
        exit(1);
    }
    return v;
}

/* A stream socket and the address of CID:PORT; -1 (errno set) if there is no vsock support. */
static int vsock_socket(unsigned int cid, unsigned int port, struct sockaddr_vm *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->svm_family = AF_VSOCK;
    addr->svm_cid = cid;
    addr->svm_port = port;
    return socket(AF_VSOCK, SOCK_STREAM, 0);
}

static int unix_address(const char *path, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr->sun_path) {
        fprintf(stderr, "vsock-echo: socket path too long: %s\n", path);
        exit(1);
    }
    strcpy(addr->sun_path, path);
    return socket(AF_UNIX, SOCK_STREAM, 0);
}

/* Echoes connections on the bound socket s until one (once) or forever. */
static int serve_on(int s, int once)
{
    if (listen(s, 8) < 0)
        return fail("listen");
    static char buf[65536];
    do {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            return fail("accept");
        }
        for (;;) {
            ssize_t n = read(c, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || write_all(c, buf, (size_t)n) < 0)
                break;
        }
        close(c);
    } while (!once);
    close(s);
    return 0;
}

static int serve(unsigned int port, int once)
{
    struct sockaddr_vm addr;
    int s = vsock_socket(VMADDR_CID_ANY, port, &addr);
    if (s < 0)
        return fail("socket(AF_VSOCK)");
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0)
        return fail("bind");
    return serve_on(s, once);
}

static int uds_serve(const char *path, int once)
{
    struct sockaddr_un addr;
    int s = unix_address(path, &addr);
    if (s < 0)
        return fail("socket(AF_UNIX)");
    unlink(path);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0)
        return fail("bind");
    return serve_on(s, once);
}

/* Copies stdin to the connected socket s (half-closing at end of input) and s to stdout until s closes. */
static int pump(int s)
{
    static char buf[65536];
    int input_open = 1;
    for (;;) {
        struct pollfd p[2] = { { .fd = s, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
        if (poll(p, input_open ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return fail("poll");
        }
        if (p[0].revents) {
            ssize_t n = read(s, buf, sizeof buf);
            if (n < 0 && errno != EINTR)
                return fail("read from the connection");
            if (n == 0)
                break;
            if (n > 0 && write_all(1, buf, (size_t)n) < 0)
                return fail("write to stdout");
        }
        if (input_open && p[1].revents) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n < 0 && errno != EINTR)
                return fail("read stdin");
            if (n == 0) {
                input_open = 0;
                shutdown(s, SHUT_WR);
            } else if (n > 0 && write_all(s, buf, (size_t)n) < 0) {
                return fail("write to the connection");
            }
        }
    }
    close(s);
    return 0;
}

static int client(unsigned int cid, unsigned int port)
{
    struct sockaddr_vm addr;
    int s = vsock_socket(cid, port, &addr);
    if (s < 0)
        return fail("socket(AF_VSOCK)");
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0)
        return fail("connect");
    return pump(s);
}

/* A stream socket connected to the Unix socket PATH; -1 once the error is printed. */
static int uds_connect(const char *path)
{
    struct sockaddr_un addr;
    int s = unix_address(path, &addr);
    if (s < 0) {
        fail("socket(AF_UNIX)");
        return -1;
    }
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fail("connect");
        close(s);
        return -1;
    }
    return s;
}

static int uds_pipe(const char *path)
{
    int s = uds_connect(path);
    return s < 0 ? 1 : pump(s);
}

static int uds_client(const char *path, unsigned int port)
{
    int s = uds_connect(path);
    if (s < 0)
        return 1;
    char line[64];
    int len = snprintf(line, sizeof line, "CONNECT %u\n", port);
    if (write_all(s, line, (size_t)len) < 0)
        return fail("write CONNECT");
    /* The answer is one line: "OK <host port>". Read it a byte at a time so no data after it is consumed. */
    size_t n = 0;
    while (n + 1 < sizeof line) {
        ssize_t r = read(s, line + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    if (strncmp(line, "OK ", 3) != 0) {
        fprintf(stderr, "vsock-echo: the VMM refused CONNECT %u: '%s'\n", port, line);
        return 1;
    }
    fprintf(stderr, "vsock-echo: %s", line);
    return pump(s);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && argc <= 4 && strcmp(argv[1], "listen") == 0)
        return serve((unsigned int)parse(argv[2], "port", 0xFFFFFFFFul), argc == 4 && strcmp(argv[3], "1") == 0);
    if (argc == 4 && strcmp(argv[1], "connect") == 0)
        return client((unsigned int)parse(argv[2], "cid", 0xFFFFFFFFul), (unsigned int)parse(argv[3], "port", 0xFFFFFFFFul));
    if (argc >= 3 && argc <= 4 && strcmp(argv[1], "uds-listen") == 0)
        return uds_serve(argv[2], argc == 4 && strcmp(argv[3], "1") == 0);
    if (argc == 4 && strcmp(argv[1], "uds-connect") == 0)
        return uds_client(argv[2], (unsigned int)parse(argv[3], "port", 0xFFFFFFFFul));
    if (argc == 3 && strcmp(argv[1], "uds-pipe") == 0)
        return uds_pipe(argv[2]);
    fprintf(stderr, "usage: vsock-echo listen PORT [1] | connect CID PORT | uds-listen PATH [1] | uds-connect PATH PORT"
                    " | uds-pipe PATH\n");
    return 1;
}
