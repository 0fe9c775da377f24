/*
 * qmp-send: a minimal QMP client for the lab's busybox-only outer VM.
 *
 *   qmp-send <socket> ['<json>' ...] [--wait-event <NAME>]
 *
 * Connects to the Unix socket, reads the greeting, negotiates with qmp_capabilities, then sends each command
 * and prints every line received until its reply (events that arrive meanwhile are printed too). With
 * --wait-event it then goes on printing lines until event NAME has arrived (or had arrived meanwhile), for up
 * to 180 s.
 * Exits 0 when no reply was an error, 1 when one was, 2 on usage, connection or protocol trouble (10 s without
 * input, or the server closing before the awaited event).
 *
 * Build: gcc -static -O2 -o qmp-send scripts/lab/qmp-send.c
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMEOUT_MS 10000
/* --wait-event waits longer: a guest may take a while to boot and power off. */
#define WAIT_EVENT_TIMEOUT_MS 180000

static int timeout_ms = TIMEOUT_MS;

static int sock = -1;
static char inbuf[1 << 20];
static size_t inlen;

static void die(const char *what)
{
    fprintf(stderr, "qmp-send: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(2);
}

/* Reads one line (without its newline) into inbuf's front; returns its length. */
static size_t read_line(char **line)
{
    static size_t consumed;
    if (consumed) {
        memmove(inbuf, inbuf + consumed, inlen - consumed);
        inlen -= consumed;
        consumed = 0;
    }
    for (;;) {
        char *nl = memchr(inbuf, '\n', inlen);
        if (nl) {
            size_t n = (size_t)(nl - inbuf);
            consumed = n + 1;
            if (n > 0 && inbuf[n - 1] == '\r') n--;
            inbuf[n] = '\0';
            *line = inbuf;
            return n;
        }
        if (inlen == sizeof inbuf - 1) { errno = 0; die("line too long"); }
        struct pollfd p = { .fd = sock, .events = POLLIN };
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("poll");
        if (r == 0) { errno = 0; die("timed out waiting for the server"); }
        ssize_t got = read(sock, inbuf + inlen, sizeof inbuf - 1 - inlen);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) die("read");
        if (got == 0) { errno = 0; die("the server closed the connection"); }
        inlen += (size_t)got;
    }
}

static void send_all(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(sock, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) die("send");
        s += w;
        n -= (size_t)w;
    }
}

/* True when the line is a JSON object whose first member is the given key. */
static int starts_with_key(const char *line, const char *key)
{
    while (*line == ' ' || *line == '\t') line++;
    if (*line++ != '{') return 0;
    while (*line == ' ' || *line == '\t') line++;
    return strncmp(line, key, strlen(key)) == 0;
}

static const char *wait_event; /* --wait-event NAME, or NULL */
static int wait_event_seen;

/* Notes whether the line is the awaited event: {"event": "NAME", ...}. */
static void note_event(const char *line)
{
    if (!wait_event || !starts_with_key(line, "\"event\"")) return;
    const char *p = strstr(line, "\"event\"") + 7;
    while (*p == ' ' || *p == '\t' || *p == ':') p++;
    size_t n = strlen(wait_event);
    if (*p == '"' && strncmp(p + 1, wait_event, n) == 0 && p[1 + n] == '"') wait_event_seen = 1;
}

/* Sends one command and prints lines up to and including its reply; returns 1 if the reply is an error. */
static int execute(const char *json, int print)
{
    send_all(json, strlen(json));
    send_all("\n", 1);
    for (;;) {
        char *line;
        read_line(&line);
        note_event(line);
        int is_return = starts_with_key(line, "\"return\"");
        int is_error = starts_with_key(line, "\"error\"");
        if (print || is_error) printf("%s\n", line);
        fflush(stdout);
        if (is_return || is_error) return is_error;
    }
}

int main(int argc, char **argv)
{
    int commands = argc;
    if (argc >= 2 && strcmp(argv[argc - 2], "--wait-event") == 0) {
        wait_event = argv[argc - 1];
        commands = argc - 2;
    }
    if (commands < 2) {
        fprintf(stderr, "usage: qmp-send <socket> ['<json>' ...] [--wait-event <NAME>]\n");
        return 2;
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(argv[1]) >= sizeof addr.sun_path) { errno = ENAMETOOLONG; die(argv[1]); }
    strcpy(addr.sun_path, argv[1]);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0) die("socket");
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) die(argv[1]);

    char *line;
    read_line(&line);
    if (!starts_with_key(line, "\"QMP\"")) {
        fprintf(stderr, "qmp-send: unexpected greeting: %s\n", line);
        return 2;
    }
    int failed = execute("{\"execute\":\"qmp_capabilities\"}", 0);
    for (int i = 2; i < commands; i++) failed |= execute(argv[i], 1);
    timeout_ms = WAIT_EVENT_TIMEOUT_MS;
    while (wait_event && !wait_event_seen) {
        read_line(&line);
        note_event(line);
        printf("%s\n", line);
        fflush(stdout);
    }
    close(sock);
    return failed ? 1 : 0;
}
