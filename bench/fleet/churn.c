/*
 * churn: one long-lived QMP client that starts and stops the same VM many times, and reports what is left.
 *
 *   churn <cycles> <run-dir> <vmm> [vmm args...]
 *
 * Each cycle spawns the VMM (its arguments may name "{sock}", replaced with <run-dir>/qmp.sock), waits for the
 * socket, connects, reads the greeting, sends qmp_capabilities and quit, reads until the server closes, and
 * waits for the VMM, which must exit 0. The VMM's stderr goes to <run-dir>.err (kept from the last cycle).
 * After the first cycle (the baseline), every 100 cycles and at the end, it prints its own open fds and VmRSS, the entries left in <run-dir>, and
 * whether any network interface other than lo exists (the VMM's tap must go with it).
 * Exits 0 when every cycle succeeded and nothing grew or was left behind, 1 otherwise, 2 on usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int count_dir(const char *path, const char *skip)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (skip && !strcmp(e->d_name, skip)) continue;
        n++;
    }
    closedir(d);
    return n;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

/* Reads until the server closes the connection or 30 s pass; returns 0 when it closed. */
static int drain(int fd)
{
    char buf[4096];
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, 30000);
        if (r <= 0) return -1;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) return 0;
        if (n < 0 && errno != EINTR) return -1;
    }
}

static int one_cycle(char **argv, const char *sock_path, const char *err_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) { fprintf(stderr, "churn: spawn %s: %s\n", argv[0], strerror(rc)); return -1; }

    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path);
    int fd = -1;
    for (int i = 0; i < 3000 && fd < 0; i++) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(s, (struct sockaddr *)&addr, sizeof addr) == 0) { fd = s; break; }
        close(s);
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) { fprintf(stderr, "churn: the VMM exited before its socket listened\n"); return -1; }
        usleep(10000);
    }
    int ok = fd >= 0;
    if (ok) {
        const char *cmds = "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n";
        ok = write(fd, cmds, strlen(cmds)) == (ssize_t)strlen(cmds) && drain(fd) == 0;
        close(fd);
    }
    if (!ok) { fprintf(stderr, "churn: no QMP session with the VMM\n"); kill(pid, SIGKILL); }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!ok) return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "churn: the VMM ended with status 0x%x\n", status);
        return -1;
    }
    return 0;
}

static void report(int cycle, const char *dir, int *fds, long *rss, int *left, int *ifaces)
{
    *fds = count_dir("/proc/self/fd", NULL) - 1; /* minus the directory stream itself */
    *rss = rss_kb();
    *left = count_dir(dir, NULL);
    *ifaces = count_dir("/sys/class/net", "lo");
    printf("CHURN cycle=%d client-fds=%d client-rss-kb=%ld run-dir-entries=%d interfaces=%d\n", cycle, *fds, *rss, *left, *ifaces);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: churn <cycles> <run-dir> <vmm> [vmm args...]\n"); return 2; }
    int cycles = atoi(argv[1]);
    const char *dir = argv[2];
    char sock_path[512], err_path[512];
    snprintf(sock_path, sizeof sock_path, "%s/qmp.sock", dir);
    snprintf(err_path, sizeof err_path, "%s.err", dir);
    char **vmm = calloc(argc, sizeof *vmm);
    for (int i = 3; i < argc; i++) {
        if (strstr(argv[i], "{sock}")) {
            char *s = malloc(strlen(argv[i]) + strlen(sock_path));
            char *at = strstr(argv[i], "{sock}");
            sprintf(s, "%.*s%s%s", (int)(at - argv[i]), argv[i], sock_path, at + 6);
            vmm[i - 3] = s;
        } else {
            vmm[i - 3] = argv[i];
        }
    }
    int fds0, left0, if0, fds, left, ifs, failed = 0;
    long rss0, rss;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int c = 1; c <= cycles; c++) {
        if (one_cycle(vmm, sock_path, err_path)) {
            failed++;
            fprintf(stderr, "churn: cycle %d failed\n", c);
        }
        /* The baseline is taken after the first cycle, when the client's own code paths have been touched. */
        if (c == 1) report(c, dir, &fds0, &rss0, &left0, &if0);
        if (c % 100 == 0 || c == cycles) report(c, dir, &fds, &rss, &left, &ifs);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    int grew = fds != fds0 || left != left0 || ifs != if0 || rss > rss0 + 64;
    printf("CHURN-RESULT cycles=%d failed=%d seconds=%.1f fd-growth=%d rss-growth-kb=%ld run-dir-left=%d interfaces-left=%d %s\n",
           cycles, failed, secs, fds - fds0, rss - rss0, left, ifs, (failed || grew) ? "FAIL" : "PASS");
    return (failed || grew) ? 1 : 0;
}
