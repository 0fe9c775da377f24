/*
 * launch: start a program with a timestamp of its start.
 *
 *   launch <program> [args...]
 *
 * Reads CLOCK_MONOTONIC, puts it in the environment as BENCH_T0_NS, writes
 * "BENCH_T0_NS=<ns>" on stderr and execv's the program, so the moment of
 * exec is the start. A benchmark then takes the monotonic time in the
 * program's boot-timer line minus BENCH_T0_NS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <program> [args...]\n", argv[0]);
        return 2;
    }
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    unsigned long long ns = (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
    char buf[64];
    snprintf(buf, sizeof buf, "%llu", ns);
    setenv("BENCH_T0_NS", buf, 1);
    char line[96];
    int n = snprintf(line, sizeof line, "BENCH_T0_NS=%llu\n", ns);
    if (write(STDERR_FILENO, line, (size_t)n) < 0) { /* best effort */ }
    execv(argv[1], argv + 1);
    fprintf(stderr, "launch: %s: %s\n", argv[1], strerror(errno));
    return 127;
}
