/*
 * randread: 4 KiB random-read IOPS of a block device at queue depth 1 (busybox has no fio).
 *
 *   randread <device> [seconds=10] [block-bytes=4096]
 *
 * Opens the device with O_DIRECT (no guest page cache), then for <seconds> reads one block at a random
 * block-aligned offset after another with pread. Prints one line:
 *   RANDREAD ops=<n> ms=<elapsed> iops=<n> bs=<bytes> size=<device bytes>
 * Exit status 1 (and a message on stderr) when the device cannot be opened, sized or read.
 * Built static by bench/virtio-io.sh for the lab's guest initramfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: enough spread for offsets, no libc state. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s <device> [seconds=10] [block-bytes=4096]\n", argv[0]);
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 10.0;
    long bs = argc > 3 ? atol(argv[3]) : 4096;
    if (seconds <= 0 || bs < 512 || (bs & (bs - 1)) != 0) {
        fprintf(stderr, "randread: seconds must be > 0 and the block size a power of two >= 512\n");
        return 2;
    }

    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "randread: open %s with O_DIRECT: %s\n", argv[1], strerror(errno));
        return 1;
    }
    uint64_t size = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        size = end > 0 ? (uint64_t)end : 0;
    }
    uint64_t blocks = size / (uint64_t)bs;
    if (blocks == 0) {
        fprintf(stderr, "randread: %s is smaller than one %ld-byte block\n", argv[1], bs);
        return 1;
    }
    void *buf;
    if (posix_memalign(&buf, 4096, (size_t)bs) != 0) {
        fprintf(stderr, "randread: out of memory\n");
        return 1;
    }

    uint64_t state = now_ns() | 1;
    uint64_t limit = (uint64_t)(seconds * 1e9);
    uint64_t start = now_ns(), elapsed = 0, ops = 0;
    do {
        off_t off = (off_t)((next_random(&state) % blocks) * (uint64_t)bs);
        ssize_t got = pread(fd, buf, (size_t)bs, off);
        if (got != bs) {
            fprintf(stderr, "randread: pread at %lld: %s\n", (long long)off,
                    got < 0 ? strerror(errno) : "short read");
            return 1;
        }
        ops++;
        elapsed = now_ns() - start;
    } while (elapsed < limit);

    printf("RANDREAD ops=%llu ms=%llu iops=%.0f bs=%ld size=%llu\n", (unsigned long long)ops,
           (unsigned long long)(elapsed / 1000000u), ops * 1e9 / (double)elapsed, bs, (unsigned long long)size);
    close(fd);
    free(buf);
    return 0;
}
