/*
 * cpu-pairs N -- COMMAND... [-- COMMAND...]...
 *
 * Runs the commands in turn (A B C A B C ...) N times each, with empty stdin and their output thrown away, and prints
 * for each the median, first and third quartile of its CPU time (user + system of the finished child, from wait4)
 * and its median wall time, in microseconds. Running them in turn keeps the comparison fair when the host's speed
 * drifts during the run. Leading NAME=VALUE words of a command are put into its environment.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COMMANDS 16

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int run(char **argv, double *cpu_us, double *wall_us)
{
    double start = now_us();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull < 0)
            _exit(126);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        while (*argv && strchr(*argv, '=') && **argv != '/')
            putenv(*argv++);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid)
        return -1;
    *wall_us = now_us() - start;
    *cpu_us = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    return WIFEXITED(status) && WEXITSTATUS(status) >= 126 ? -1 : 0;
}

int main(int argc, char **argv)
{
    char **commands[MAX_COMMANDS];
    int count = 0, n = argc > 1 ? atoi(argv[1]) : 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") != 0)
            continue;
        argv[i] = NULL;
        if (i + 1 < argc && count < MAX_COMMANDS)
            commands[count++] = &argv[i + 1];
    }
    if (n < 1 || count == 0) {
        fprintf(stderr, "usage: cpu-pairs N -- COMMAND... [-- COMMAND...]...\n");
        return 2;
    }
    double *cpu[MAX_COMMANDS], *wall[MAX_COMMANDS];
    for (int c = 0; c < count; c++) {
        cpu[c] = calloc(n, sizeof(double));
        wall[c] = calloc(n, sizeof(double));
        if (!cpu[c] || !wall[c])
            return 1;
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < count; c++)
            if (run(commands[c], &cpu[c][i], &wall[c][i]) != 0) {
                fprintf(stderr, "cpu-pairs: %s could not be run\n", commands[c][0]);
                return 1;
            }
    for (int c = 0; c < count; c++) {
        qsort(cpu[c], n, sizeof(double), by_value);
        qsort(wall[c], n, sizeof(double), by_value);
        printf("%d cpu_median_us %.0f cpu_q1_us %.0f cpu_q3_us %.0f wall_median_us %.0f\n", c, cpu[c][n / 2],
               cpu[c][n / 4], cpu[c][3 * n / 4], wall[c][n / 2]);
    }
    return 0;
}
