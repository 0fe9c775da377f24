/*
 * qmp-send: a minimal QMP client for the lab's busybox-only outer VM.
 *
 *   qmp-send <socket> ['<json>' ...] [--wait-event <NAME>]
 *   qmp-send <socket> --poll <per-second> '<json>' ...
 *
 * Connects to the Unix socket, reads the greeting, negotiates with qmp_capabilities, then sends each command
 * and prints every line received until its reply (events that arrive meanwhile are printed too). With
 * --wait-event it then goes on printing lines until event NAME has arrived (or had arrived meanwhile), for up
 * to 180 s.
 * Exits 0 when no reply was an error, 1 when one was, 2 on usage, connection or protocol trouble (10 s without
 * input, or the server closing before the awaited event).
 *
 * --poll (the load test, scripts/lab/soak-host.sh) sends the commands in turn, one every 1/<per-second> s on a
 * fixed schedule, each after the previous one's reply, until SIGTERM or SIGINT (then it stops after the reply in
 * flight) or until the server closes. A schedule more than 0.5 s behind (a slow reply) skips its missed slots
 * rather than bursting them (a burst would meet QMP's rate limit). Every 10 s and at the end it prints
 *   QMP-POLL[-PROGRESS] secs=<s> sent=<n> answered=<n> errors=<n> late-slots=<n> max-ms=<slowest reply>
 *                       rate=<answered per second> ended=<running|signal|closed|timeout>
 * and each error reply once as QMP-POLL-ERROR <line>. Exits 0 when every request got a non-error reply and the
 * poll ended by a signal, 1 otherwise.
 *
 * Build: gcc -static -O2 -o qmp-send scripts/lab/qmp-send.c
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 10000
/* --wait-event waits longer: a guest may take a while to boot and power off. */
#define WAIT_EVENT_TIMEOUT_MS 180000

static int timeout_ms = TIMEOUT_MS;
/* --poll: the server closing or going quiet ends the poll (it is counted, not fatal). */
static int poll_mode;

static int sock = -1;
static char inbuf[1 << 20];
static size_t inlen;

static void die(const char *what)
{
    fprintf(stderr, "qmp-send: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(2);
}

#define POLL_TIMEOUT ((size_t)-1)
#define POLL_CLOSED ((size_t)-2)

/* Reads one line (without its newline) into inbuf's front; returns its length (in --poll mode POLL_TIMEOUT or
 * POLL_CLOSED instead of dying). */
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
        if (r == 0 && poll_mode) return POLL_TIMEOUT;
        if (r == 0) { errno = 0; die("timed out waiting for the server"); }
        ssize_t got = read(sock, inbuf + inlen, sizeof inbuf - 1 - inlen);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0 && poll_mode) return POLL_CLOSED;
        if (got < 0) die("read");
        if (got == 0) { errno = 0; die("the server closed the connection"); }
        inlen += (size_t)got;
    }
}

/* Sends all of s; in --poll mode returns -1 when the server has gone (elsewhere that is fatal). */
static int send_all(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(sock, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && poll_mode) return -1;
        if (w < 0) die("send");
        s += w;
        n -= (size_t)w;
    }
    return 0;
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

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct poll_stats {
    double start;
    long sent, answered, errors, late_slots;
    double max_reply_s;
};

static void poll_report(const char *tag, const struct poll_stats *st, const char *ended)
{
    double secs = now_s() - st->start;
    printf("%s secs=%.1f sent=%ld answered=%ld errors=%ld late-slots=%ld max-ms=%.0f rate=%.1f ended=%s\n", tag, secs,
        st->sent, st->answered, st->errors, st->late_slots, st->max_reply_s * 1000, secs > 0 ? st->answered / secs : 0.0,
        ended);
    fflush(stdout);
}

/* --poll: see the header. Returns the exit status. */
static int poll_commands(char **cmds, int ncmds, double per_second)
{
    struct sigaction sa = { .sa_handler = on_stop };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    poll_mode = 1;
    timeout_ms = 30000; /* a reply slower than this under the emulated lab is a stall, and ends the poll */
    struct poll_stats st = { .start = now_s() };
    double period = 1.0 / per_second, next = st.start, next_report = st.start + 10;
    const char *ended = "signal";
    while (!stop_requested) {
        const char *json = cmds[st.sent % ncmds];
        double sent_at = now_s();
        if (send_all(json, strlen(json)) < 0 || send_all("\n", 1) < 0) {
            ended = "closed";
            break;
        }
        st.sent++;
        for (;;) {
            char *line;
            size_t n = read_line(&line);
            if (n == POLL_CLOSED || n == POLL_TIMEOUT) {
                ended = n == POLL_CLOSED ? "closed" : "timeout";
                goto done;
            }
            if (starts_with_key(line, "\"error\"")) {
                if (st.errors++ < 20) printf("QMP-POLL-ERROR %s\n", line);
            } else if (!starts_with_key(line, "\"return\"")) {
                continue; /* an event */
            }
            st.answered++;
            break;
        }
        double t = now_s();
        if (t - sent_at > st.max_reply_s) st.max_reply_s = t - sent_at;
        if (t >= next_report) {
            poll_report("QMP-POLL-PROGRESS", &st, "running");
            next_report += 10;
        }
        next += period;
        if (t - next > 0.5) {
            st.late_slots += (long)((t - next) / period);
            next = t;
        }
        if (next > t) {
            double d = next - t;
            struct timespec ts = { .tv_sec = (time_t)d, .tv_nsec = (long)((d - (double)(time_t)d) * 1e9) };
            nanosleep(&ts, NULL); /* a signal cuts it short; the loop then ends */
        }
    }
done:
    poll_report("QMP-POLL", &st, ended);
    return st.errors == 0 && st.answered == st.sent && strcmp(ended, "signal") == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int commands = argc;
    double per_second = 0;
    if (argc >= 3 && strcmp(argv[2], "--poll") == 0) {
        per_second = argc >= 5 ? atof(argv[3]) : 0;
        if (per_second <= 0) {
            fprintf(stderr, "qmp-send: --poll wants a rate above 0 and at least one command\n");
            return 2;
        }
    }
    if (argc >= 2 && strcmp(argv[argc - 2], "--wait-event") == 0) {
        wait_event = argv[argc - 1];
        commands = argc - 2;
    }
    if (commands < 2) {
        fprintf(stderr, "usage: qmp-send <socket> ['<json>' ...] [--wait-event <NAME>]\n"
                        "       qmp-send <socket> --poll <per-second> '<json>' ...\n");
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
    if (per_second > 0) return failed ? 1 : poll_commands(argv + 4, argc - 4, per_second);
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
