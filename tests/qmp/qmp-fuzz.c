/*
 * qmp-fuzz: a hostile QMP client. It connects to a VMM's QMP socket and sends generated frames: garbage bytes,
 * unfinished and deeply nested JSON, strings longer than the server's limit, invalid UTF-8 and broken escapes in
 * keys, values and command names, known commands with mutated arguments, frames split across writes, and
 * clients that leave mid-request. Every so often it checks on a fresh connection that the server still answers
 * query-status; then it runs every command the VMM has with valid arguments, and ends the VM with quit.
 *
 *   qmp-fuzz <socket> <seed> <frames> <work dir> [--cycles N]
 *
 * <work dir> holds the images blockdev-add opens (the tool creates them); taps are created by netdev_add in the
 * caller's network namespace. Prints "QMP-FUZZ frames=N checks=N cycles=N" and exits 0 when the server answered
 * every check and quit; 1 when it stopped answering; 2 on usage or setup trouble.
 *
 * Build: gcc -static -O2 -o qmp-fuzz tests/qmp/qmp-fuzz.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHECK_EVERY 64          /* frames between liveness checks */
#define REPLY_TIMEOUT_MS 30000  /* the lab is 10-50x slower than hardware */
#define MAX_FRAME (80 * 1024)   /* above the server's 64 KiB request limit */

static const char *sock_path, *work_dir;
static uint64_t rng_state;
static char frame[MAX_FRAME + 64];
static size_t frame_len;

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "qmp-fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(code);
}

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static unsigned below(unsigned n) { return n ? (unsigned)(rnd() % n) : 0; }

static void put(const char *s, size_t n)
{
    size_t room = sizeof frame - frame_len;
    if (n > room) n = room;
    for (size_t i = 0; i < n; i++) frame[frame_len + i] = s[i];
    frame_len += n;
}

static void puts_(const char *s) { put(s, strlen(s)); }

static void putf(const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) put(tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ---- connections ---- */

static int connect_server(void)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) die(2, "socket: %s", strerror(errno));
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
    for (int tries = 0; connect(s, (struct sockaddr *)&a, sizeof a) != 0; tries++) {
        if (tries >= 300) die(1, "connect %s: %s", sock_path, strerror(errno));
        usleep(100 * 1000);
    }
    return s;
}

/* Writes all of buf, in pieces split at random points with short pauses between them (a request arriving in
 * several reads). Returns -1 once the server has closed the connection. */
static int send_split(int s, const char *buf, size_t n, int split)
{
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        if (split && chunk > 1) chunk = 1 + below((unsigned)(chunk < 4096 ? chunk : 4096));
        ssize_t w = send(s, buf + done, chunk, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)w;
        if (split && below(4) == 0) usleep(200);
    }
    return 0;
}

/* Reads and drops whatever the server sent, without waiting. Returns -1 once it has closed. */
static int drain(int s)
{
    char buf[65536];
    for (;;) {
        ssize_t r = recv(s, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) continue;
        if (r == 0) return -1;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    }
}

/* Waits for a line containing `needle`; 0 when it came, -1 on timeout or close. */
static int wait_for(int s, const char *needle)
{
    static char buf[1 << 20];
    size_t len = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = REPLY_TIMEOUT_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) return -1;
        struct pollfd p = { .fd = s, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0) continue;
        ssize_t r = recv(s, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0) return -1;
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, needle)) return 0;
        if (len > sizeof buf / 2) { /* keep the tail only */
            memmove(buf, buf + len - 4096, 4096);
            len = 4096;
        }
    }
}

/* ---- frame generators ---- */

static const char *commands[] = {
    "qmp_capabilities", "query-status", "stop", "cont", "query-version", "query-commands", "balloon",
    "query-balloon", "query-cpus", "query-hotpluggable-cpus", "query-mem", "getfd", "closefd", "query-target",
    "query-kvm", "query-machines", "query-events", "device-list-properties", "qom-list-types", "query-chardev",
    "query-iothreads", "blockdev-add", "blockdev-del", "netdev_add", "netdev_del", "device_add", "device_del",
    "migrate", "query-migrate", "human-monitor-command", "no-such-command", "",
};
static const char *keys[] = {
    "node-name", "file", "driver", "filename", "read-only", "cache", "direct", "no-flush", "id", "ifname", "fd",
    "fds", "type", "queues", "netdev", "drive", "addr", "lun", "serial", "mac", "value", "fdname", "typename",
    "bus", "chardev", "aio", "media", "detect-zeroes", "uri", "command-line", "x", "",
};

static void random_bytes(size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = (char)below(256);
        put(&c, 1);
    }
}

/* A string body (without quotes): plain, invalid UTF-8, broken or lone-surrogate escapes, control bytes. */
static void hostile_string(void)
{
    static const char *bad[] = {
        "\xff\xfe\xc0\xaf", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf8\x88\x80\x80\x80", "\\ud800", "\\udc00",
        "\\ud800\\u0041", "\\u12", "\\x41", "\\", "\x01\x02\x1f", "\\u0000", "caf\xc3\xa9",
    };
    switch (below(4)) {
    case 0: puts_(bad[below(sizeof bad / sizeof bad[0])]); break;
    case 1: for (unsigned i = below(40); i-- > 0;) { char c = (char)('a' + below(26)); put(&c, 1); } break;
    case 2: puts_(keys[below(sizeof keys / sizeof keys[0])]); break;
    default: puts_("/dev/null"); break;
    }
}

static void hostile_value(int depth)
{
    switch (below(depth > 3 ? 7 : 9)) {
    case 0: putf("%d", (int)below(100)); break;
    case 1: putf("%lld", (long long)rnd()); break;
    case 2: puts_("-1"); break;
    case 3: puts_(below(2) ? "1e400" : "0.5"); break;
    case 4: puts_(below(2) ? "true" : "null"); break;
    case 5: puts_("\""); hostile_string(); puts_("\""); break;
    case 6: putf("\"%s\"", below(2) ? "0x1" : "d0"); break;
    case 7:
        puts_("{");
        for (unsigned i = below(4); i-- > 0;) {
            puts_("\""); hostile_string(); puts_("\":");
            hostile_value(depth + 1);
            if (i) puts_(",");
        }
        puts_("}");
        break;
    default:
        puts_("[");
        for (unsigned i = below(4); i-- > 0;) {
            hostile_value(depth + 1);
            if (i) puts_(",");
        }
        puts_("]");
        break;
    }
}

/* Commands that would end the VM or pause it for good are left to the end. */
static const char *fuzz_command(void)
{
    for (;;) {
        const char *c = commands[below(sizeof commands / sizeof commands[0])];
        if (strcmp(c, "stop") != 0) return c;
    }
}

static void mutated_command(void)
{
    puts_("{\"execute\":\"");
    if (below(8) == 0) hostile_string(); else puts_(fuzz_command());
    puts_("\"");
    if (below(4)) {
        puts_(",\"arguments\":{");
        for (unsigned i = below(5); i-- > 0;) {
            puts_("\"");
            if (below(5) == 0) hostile_string(); else puts_(keys[below(sizeof keys / sizeof keys[0])]);
            puts_("\":");
            hostile_value(0);
            if (i) puts_(",");
        }
        puts_("}");
    }
    if (below(3) == 0) { puts_(",\"id\":"); hostile_value(2); }
    if (below(10) == 0) { puts_(",\""); hostile_string(); puts_("\":1"); }
    puts_("}");
}

static void nested(void)
{
    unsigned depth = 10 + below(5000);
    int obj = below(2);
    for (unsigned i = 0; i < depth; i++) puts_(obj ? "{\"a\":" : "[");
    puts_("1");
    for (unsigned i = 0; i < depth; i++) puts_(obj ? "}" : "]");
}

/* One generated frame into `frame`; returns whether the connection should be dropped afterwards (the frame
 * leaves the server's framer in an unknown state, or the client leaves mid-request on purpose). */
static int generate(void)
{
    frame_len = 0;
    switch (below(12)) {
    case 0: random_bytes(1 + below(300)); return 1;
    case 1: puts_("{\"execute\":\"query-status\""); return 1;            /* unfinished */
    case 2: nested(); return 0;
    case 3: puts_("{\"execute\":\""); for (unsigned i = 70000; i-- > 0;) put("a", 1); puts_("\"}"); return 1;
    case 4: puts_("{\"execute\":\"\xff\xfe\xc0\xaf\"}"); return 0;          /* invalid UTF-8, command name */
    case 5: puts_("{\"execute\":\"query-status\",\"\xc3\":1}"); return 0;  /* in a key */
    case 6: puts_("{\"execute\":\"balloon\",\"arguments\":{\"value\":\"\xed\xa0\x80\"}}"); return 0;
    case 7: puts_("{\"execute\":\"\\ud800\"}"); return 0;                  /* a lone surrogate escape */
    case 8: puts_("]]]}}}\n\"\n"); return 1;
    default: mutated_command(); return 0;
    }
}

/* ---- the valid cycle: every command with arguments that work ---- */

static int cycle_id;

static int command(int s, const char *json)
{
    char id[32];
    snprintf(id, sizeof id, "\"id\":\"c%d\"", ++cycle_id);
    char buf[2048];
    size_t n = strlen(json);
    if (n < 1 || n + 64 > sizeof buf) die(2, "command too long");
    snprintf(buf, sizeof buf, "%.*s,%s}\n", (int)(n - 1), json, id);
    if (send_split(s, buf, strlen(buf), 0) != 0) return -1;
    return wait_for(s, id);
}

static int send_fd(int s, const char *json, int fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec iov = { .iov_base = (void *)json, .iov_len = strlen(json) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(s, &m, MSG_NOSIGNAL) < 0 ? -1 : wait_for(s, "\"return\"");
}

static int valid_cycle(int s, int n)
{
    static const char *queries[] = {
        "{\"execute\":\"qmp_capabilities\"}", "{\"execute\":\"query-status\"}", "{\"execute\":\"query-version\"}",
        "{\"execute\":\"query-commands\"}", "{\"execute\":\"query-balloon\"}", "{\"execute\":\"query-cpus\"}",
        "{\"execute\":\"query-hotpluggable-cpus\"}", "{\"execute\":\"query-mem\"}", "{\"execute\":\"query-target\"}",
        "{\"execute\":\"query-kvm\"}", "{\"execute\":\"query-machines\"}", "{\"execute\":\"query-events\"}",
        "{\"execute\":\"qom-list-types\"}", "{\"execute\":\"query-chardev\"}", "{\"execute\":\"query-iothreads\"}",
        "{\"execute\":\"device-list-properties\",\"arguments\":{\"typename\":\"virtio-blk-device\"}}",
        "{\"execute\":\"balloon\",\"arguments\":{\"value\":134217728}}",
        "{\"execute\":\"stop\"}", "{\"execute\":\"cont\"}",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++)
        if (command(s, queries[i]) != 0) return -1;
    char json[1024];
    snprintf(json, sizeof json, "{\"execute\":\"blockdev-add\",\"arguments\":{\"node-name\":\"fz%d\",\"file\":"
             "{\"driver\":\"file\",\"filename\":\"%s/disk%d.img\"},\"cache\":{\"direct\":false}}}", n, work_dir, n % 2);
    if (command(s, json) != 0) return -1;
    snprintf(json, sizeof json, "{\"execute\":\"device_add\",\"arguments\":{\"id\":\"fzd%d\",\"driver\":\"virtio-blk-mmio\","
             "\"drive\":\"fz%d\"}}", n, n);
    if (command(s, json) != 0) return -1;
    snprintf(json, sizeof json, "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"fzd%d\"}}", n);
    if (command(s, json) != 0) return -1;
    snprintf(json, sizeof json, "{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"fz%d\"}}", n);
    if (command(s, json) != 0) return -1;
    snprintf(json, sizeof json, "{\"execute\":\"netdev_add\",\"arguments\":{\"id\":\"fzn%d\",\"ifname\":\"fz%d\"}}", n, n % 4);
    if (command(s, json) != 0) return -1;
    snprintf(json, sizeof json, "{\"execute\":\"device_add\",\"arguments\":{\"id\":\"fzv%d\",\"driver\":\"virtio-net-mmio\","
             "\"netdev\":\"fzn%d\"}}", n, n);
    if (command(s, json) != 0) return -1;
    snprintf(json, sizeof json, "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"fzv%d\"}}", n);
    if (command(s, json) != 0) return -1;
    snprintf(json, sizeof json, "{\"execute\":\"netdev_del\",\"arguments\":{\"id\":\"fzn%d\"}}", n);
    if (command(s, json) != 0) return -1;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(2, "open /dev/null: %s", strerror(errno));
    snprintf(json, sizeof json, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"fzfd%d\"}}\n", n);
    int r = send_fd(s, json, fd);
    close(fd);
    if (r != 0) return -1;
    snprintf(json, sizeof json, "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"fzfd%d\"}}", n);
    return command(s, json);
}

int main(int argc, char **argv)
{
    if (argc < 5) die(2, "usage: qmp-fuzz <socket> <seed> <frames> <work dir> [--cycles N]");
    sock_path = argv[1];
    rng_state = strtoull(argv[2], NULL, 0) * 0x9E3779B97F4A7C15ull + 1;
    long frames = strtol(argv[3], NULL, 0);
    work_dir = argv[4];
    long cycles = argc > 6 && strcmp(argv[5], "--cycles") == 0 ? strtol(argv[6], NULL, 0) : 20;
    for (int i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/disk%d.img", work_dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, 1 << 20) != 0) die(2, "%s: %s", path, strerror(errno));
        close(fd);
    }

    int s = connect_server(), checks = 0;
    for (long i = 0; i < frames; i++) {
        int drop = generate();
        if (below(8) == 0) put("\n", 1);
        if (send_split(s, frame, frame_len, below(3) == 0) != 0 || drain(s) != 0 || drop || below(50) == 0) {
            close(s); /* the server closed it, or this client leaves */
            s = connect_server();
        }
        if (i % CHECK_EVERY == CHECK_EVERY - 1) {
            close(s);
            s = connect_server();
            char alive[96];
            snprintf(alive, sizeof alive, "{\"execute\":\"query-status\",\"id\":\"alive-%ld\"}\n", i);
            if (send_split(s, alive, strlen(alive), 0) != 0 || wait_for(s, "alive-") != 0)
                die(1, "no answer to query-status after %ld frames (seed %s)", i + 1, argv[2]);
            checks++;
            close(s);
            s = connect_server();
        }
    }
    close(s);

    long done = 0;
    for (; done < cycles; done++) {
        /* A fresh connection per cycle: the server's rate limit (100 requests a second) is per connection. */
        s = connect_server();
        if (valid_cycle(s, (int)done) != 0) die(1, "the valid command cycle %ld got no answer", done);
        close(s);
    }

    s = connect_server();
    if (command(s, "{\"execute\":\"quit\"}") != 0) die(1, "no answer to quit");
    close(s);
    printf("QMP-FUZZ frames=%ld checks=%d cycles=%ld\n", frames, checks, done);
    return 0;
}
