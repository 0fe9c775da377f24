/*
 * soak-disk: the disk part of the load test's guest (scripts/lab/guest/tests/soak.sh).
 *
 *   soak-disk DEVICE SECONDS WORKER WORKERS
 *
 * Worker WORKER of WORKERS owns every WORKERS-th 64 KiB block of the first 128 MiB of DEVICE. For SECONDS it
 * writes a random block of its own with O_DIRECT (contents derived from the block number and a generation that
 * grows with every write) and reads it back, and reads back another block it wrote earlier; every read is
 * compared with what the last write put there. fdatasync after every 16th write. At the end every block it wrote
 * is read and compared once more. Every 60 s, and at the end, it prints
 *   SOAK-DISK[-END] worker=<w> secs=<s> writes=<n> reads=<n> mismatches=<n> errors=<n> max-ms=<slowest request>
 * A request that never completes (an interrupt the guest never got) shows as a stuck process: no further line.
 *
 * Build: gcc -static -O2 -o soak-disk soak-disk.c
 * Exit status: 0 when no read mismatched and no request failed; 1 otherwise; 2 on a usage or open error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 65536
#define AREA (128 * 1024 * 1024)

static unsigned char *wbuf, *rbuf;
static uint32_t *generation; /* per owned block; 0: never written */
static long writes, reads, mismatches, errors;
static double max_request_s;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The contents of block number block at generation gen. */
static void fill(unsigned char *buf, uint64_t block, uint32_t gen)
{
    uint64_t x = (block + 1) * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)gen << 32) ^ 0x5851f42d4c957f2dULL;
    for (size_t i = 0; i < BLOCK; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
}

/* One timed pread or pwrite of a whole block; false (counted) on an error or a short transfer. */
static int transfer(int fd, int write, unsigned char *buf, uint64_t block)
{
    double t = now_s();
    ssize_t n = write ? pwrite(fd, buf, BLOCK, (off_t)(block * BLOCK)) : pread(fd, buf, BLOCK, (off_t)(block * BLOCK));
    t = now_s() - t;
    if (t > max_request_s) max_request_s = t;
    if (n == BLOCK) return 1;
    if (errors++ < 10) fprintf(stderr, "soak-disk: %s of block %llu: %s\n", write ? "write" : "read",
        (unsigned long long)block, n < 0 ? strerror(errno) : "short transfer");
    return 0;
}

/* Reads owned block index i (block number block) and compares it with its last write. */
static void verify(int fd, size_t i, uint64_t block)
{
    if (!transfer(fd, 0, rbuf, block)) return;
    reads++;
    fill(wbuf, block, generation[i]);
    if (memcmp(rbuf, wbuf, BLOCK) != 0 && mismatches++ < 10)
        fprintf(stderr, "soak-disk: block %llu does not hold generation %u\n", (unsigned long long)block, generation[i]);
}

static void report(const char *tag, int worker, double secs)
{
    printf("%s worker=%d secs=%.0f writes=%ld reads=%ld mismatches=%ld errors=%ld max-ms=%.0f\n", tag, worker, secs,
        writes, reads, mismatches, errors, max_request_s * 1000);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: soak-disk DEVICE SECONDS WORKER WORKERS\n");
        return 2;
    }
    double seconds = atof(argv[2]);
    int worker = atoi(argv[3]), workers = atoi(argv[4]);
    if (seconds <= 0 || workers < 1 || worker < 0 || worker >= workers) {
        fprintf(stderr, "soak-disk: SECONDS must be above 0 and 0 <= WORKER < WORKERS\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "soak-disk: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < (off_t)BLOCK * workers) {
        fprintf(stderr, "soak-disk: %s is too small\n", argv[1]);
        return 2;
    }
    size_t owned = (size_t)((size < AREA ? size : AREA) / BLOCK / workers);
    generation = calloc(owned, sizeof *generation);
    if (!generation || posix_memalign((void **)&wbuf, 4096, BLOCK) || posix_memalign((void **)&rbuf, 4096, BLOCK)) {
        fprintf(stderr, "soak-disk: out of memory\n");
        return 2;
    }
    rng_state ^= (uint64_t)(worker + 1) * 0x2545f4914f6cdd1dULL;

    double start = now_s(), next_report = start + 60;
    while (now_s() - start < seconds) {
        size_t i = (size_t)(next_random() % owned);
        uint64_t block = (uint64_t)i * workers + worker;
        fill(wbuf, block, generation[i] + 1);
        if (transfer(fd, 1, wbuf, block)) {
            generation[i]++;
            writes++;
            if (writes % 16 == 0 && fdatasync(fd) != 0 && errors++ < 10)
                fprintf(stderr, "soak-disk: fdatasync: %s\n", strerror(errno));
            verify(fd, i, block);
        }
        size_t j = (size_t)(next_random() % owned);
        if (generation[j]) verify(fd, j, (uint64_t)j * workers + worker);
        if (now_s() >= next_report) {
            report("SOAK-DISK", worker, now_s() - start);
            next_report += 60;
        }
    }
    for (size_t i = 0; i < owned; i++)
        if (generation[i]) verify(fd, i, (uint64_t)i * workers + worker);
    report("SOAK-DISK-END", worker, now_s() - start);
    close(fd);
    return mismatches == 0 && errors == 0 ? 0 : 1;
}
