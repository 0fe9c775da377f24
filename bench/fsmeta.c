/*
 * fsmeta: the metadata cost of a file system, in three timed phases (busybox has no such tool).
 *
 *   fsmeta <directory> [files=5000]
 *
 * Creates <files> files of 16 bytes each in <directory> (open O_CREAT|O_EXCL, write, close), then stats each one,
 * then unlinks each one, and prints one line:
 *   FSMETA files=<n> create_ms=<ms> stat_ms=<ms> unlink_ms=<ms>
 * Every 500 files of a phase it says how far it got on stderr (the lab stops a console silent for 300 s).
 * The directory must exist and hold none of the names f<i>. Exit status 1 (and a message on stderr) when a call
 * fails. Built static by bench/vhost-user.sh for the lab's guest initramfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void progress(const char *phase, long i)
{
    if (i % 500 == 499)
        fprintf(stderr, "fsmeta: %s %ld\n", phase, i + 1);
}

static int fail(const char *what, const char *path)
{
    fprintf(stderr, "fsmeta: %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: fsmeta <directory> [files=5000]\n");
        return 2;
    }
    long files = argc == 3 ? strtol(argv[2], NULL, 10) : 5000;
    if (files <= 0 || files > 1000000) {
        fprintf(stderr, "fsmeta: files must be 1 to 1000000, not '%s'\n", argv[2]);
        return 2;
    }
    char path[4096];
    static const char body[16] = "fsmeta-16-bytes";
    uint64_t phase[3];

    uint64_t t0 = now_ns();
    for (long i = 0; i < files; i++) {
        snprintf(path, sizeof path, "%s/f%ld", argv[1], i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            return fail("create", path);
        if (write(fd, body, sizeof body) != (ssize_t)sizeof body) {
            close(fd);
            return fail("write", path);
        }
        if (close(fd) != 0)
            return fail("close", path);
        progress("created", i);
    }
    phase[0] = now_ns() - t0;

    t0 = now_ns();
    for (long i = 0; i < files; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/f%ld", argv[1], i);
        if (stat(path, &st) != 0)
            return fail("stat", path);
        if (st.st_size != (off_t)sizeof body) {
            fprintf(stderr, "fsmeta: %s has %lld bytes, not %zu\n", path, (long long)st.st_size, sizeof body);
            return 1;
        }
        progress("stat'ed", i);
    }
    phase[1] = now_ns() - t0;

    t0 = now_ns();
    for (long i = 0; i < files; i++) {
        snprintf(path, sizeof path, "%s/f%ld", argv[1], i);
        if (unlink(path) != 0)
            return fail("unlink", path);
        progress("unlinked", i);
    }
    phase[2] = now_ns() - t0;

    printf("FSMETA files=%ld create_ms=%.1f stat_ms=%.1f unlink_ms=%.1f\n", files, phase[0] / 1e6, phase[1] / 1e6,
           phase[2] / 1e6);
    return 0;
}
