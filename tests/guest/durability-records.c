/*
 * durability-records: the numbered, checksummed records of the crash-durability trials
 * (scripts/lab/durability-trials.sh).
 *
 *   durability-records write DEVICE NONCE        (guest) writes record 0, 1, 2, ... to DEVICE with O_DIRECT, one
 *                                                 4 KiB record per 4 KiB block, fdatasync after each, and only then
 *                                                 prints "DUR-ACK <n> <n>" on stdout; at the device's end it prints
 *                                                 "DUR-FULL <count>" and exits 0
 *   durability-records check IMAGE ACKED NONCE   (host) reads records 0..ACKED of IMAGE and prints
 *                                                 "DUR-CHECK checked=<n> intact=<n> lost=<n> first-lost=<n or -1>";
 *                                                 exits 0 when none is lost, 1 when one is
 *
 * A record: magic "SVDURREC", the trial's NONCE (so that an earlier trial's record never counts), its number, bytes
 * derived from NONCE and the number, and an FNV-1a checksum of everything before it. The number is printed twice so
 * that a line cut short by the kill ("DUR-ACK 123 12") does not read as an acknowledgement.
 *
 * Build: gcc -static -O2 -o durability-records durability-records.c
 * Exit status 2: a usage, open or I/O error (printed on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD 4096
#define MAGIC 0x4345525255445653ULL /* "SVDURREC" little-endian */

static int fail(const char *what)
{
    fprintf(stderr, "durability-records: %s: %s\n", what, strerror(errno));
    return 2;
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Fills buf with record number seq of the trial nonce. */
static void make_record(unsigned char *buf, uint64_t nonce, uint64_t seq)
{
    uint64_t words[3] = { MAGIC, nonce, seq };
    memcpy(buf, words, sizeof words);
    uint64_t x = nonce ^ (seq * 0x9e3779b97f4a7c15ULL) ^ 0x5851f42d4c957f2dULL;
    for (size_t i = sizeof words; i < RECORD - 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    uint64_t sum = fnv1a(buf, RECORD - 8);
    memcpy(buf + RECORD - 8, &sum, 8);
}

static int write_records(const char *device, uint64_t nonce)
{
    int fd = open(device, O_WRONLY | O_DIRECT);
    if (fd < 0) return fail(device);
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) return fail("lseek");
    unsigned char *buf;
    if (posix_memalign((void **)&buf, RECORD, RECORD) != 0) return fail("posix_memalign");
    uint64_t count = (uint64_t)size / RECORD;
    for (uint64_t seq = 0; seq < count; seq++) {
        make_record(buf, nonce, seq);
        if (pwrite(fd, buf, RECORD, (off_t)(seq * RECORD)) != RECORD) return fail("pwrite");
        if (fdatasync(fd) != 0) return fail("fdatasync");
        char line[64];
        int n = snprintf(line, sizeof line, "DUR-ACK %llu %llu\n", (unsigned long long)seq, (unsigned long long)seq);
        if (write(1, line, (size_t)n) != n) return fail("stdout");
    }
    printf("DUR-FULL %llu\n", (unsigned long long)count);
    return 0;
}

static int check_records(const char *image, uint64_t acked, uint64_t nonce)
{
    int fd = open(image, O_RDONLY);
    if (fd < 0) return fail(image);
    unsigned char want[RECORD], got[RECORD];
    uint64_t intact = 0, lost = 0;
    long long first_lost = -1;
    for (uint64_t seq = 0; seq <= acked; seq++) {
        make_record(want, nonce, seq);
        ssize_t n = pread(fd, got, RECORD, (off_t)(seq * RECORD));
        if (n < 0) return fail("pread");
        if (n == RECORD && memcmp(want, got, RECORD) == 0) {
            intact++;
            continue;
        }
        lost++;
        if (first_lost < 0) first_lost = (long long)seq;
    }
    printf("DUR-CHECK checked=%llu intact=%llu lost=%llu first-lost=%lld\n", (unsigned long long)(acked + 1),
        (unsigned long long)intact, (unsigned long long)lost, first_lost);
    return lost == 0 ? 0 : 1;
}

static int number(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *s == '\0' || *end != '\0') return 0;
    *out = v;
    return 1;
}

int main(int argc, char **argv)
{
    uint64_t nonce, acked;
    if (argc == 4 && strcmp(argv[1], "write") == 0 && number(argv[3], &nonce))
        return write_records(argv[2], nonce);
    if (argc == 5 && strcmp(argv[1], "check") == 0 && number(argv[3], &acked) && number(argv[4], &nonce))
        return check_records(argv[2], acked, nonce);
    fprintf(stderr, "usage: durability-records write DEVICE NONCE | check IMAGE ACKED NONCE\n");
    return 2;
}
