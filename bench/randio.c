/*
 * randio: 4 KiB random-read or random-write IOPS of a block device at a given queue depth (busybox has no fio).
 *
 *   randio <device> [seconds=10] [block-bytes=4096] [read|write] [depth=1]
 *
 * Opens the device with O_DIRECT (no guest page cache), then for <seconds> keeps <depth> block-aligned requests
 * at random offsets in flight: at depth 1 one pread or pwrite after another, deeper through the kernel's native
 * AIO (io_submit, one new request for each completion). Writes carry a fixed pattern. Prints one line:
 *   RANDIO mode=<read|write> depth=<n> ops=<n> ms=<elapsed> iops=<n> bs=<bytes> size=<device bytes>
 * Exit status 1 (and a message on stderr) when the device cannot be opened, sized, read or written.
 * Built static by bench/virtio-io.sh for the lab's guest initramfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 256

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

static int fail(const char *what, long long off, long got)
{
    fprintf(stderr, "randio: %s at %lld: %s\n", what, off, got < 0 ? strerror((int)-got) : "short transfer");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 6) {
        fprintf(stderr, "usage: %s <device> [seconds=10] [block-bytes=4096] [read|write] [depth=1]\n", argv[0]);
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 10.0;
    long bs = argc > 3 ? atol(argv[3]) : 4096;
    const char *mode = argc > 4 ? argv[4] : "read";
    int depth = argc > 5 ? atoi(argv[5]) : 1;
    int writing = strcmp(mode, "write") == 0;
    if (seconds <= 0 || bs < 512 || (bs & (bs - 1)) != 0 || (!writing && strcmp(mode, "read") != 0) || depth < 1 ||
        depth > MAX_DEPTH) {
        fprintf(stderr, "randio: seconds must be > 0, the block size a power of two >= 512, the mode read or write "
                        "and the depth 1-%d\n", MAX_DEPTH);
        return 2;
    }

    int fd = open(argv[1], (writing ? O_RDWR : O_RDONLY) | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "randio: open %s with O_DIRECT: %s\n", argv[1], strerror(errno));
        return 1;
    }
    uint64_t size = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        size = end > 0 ? (uint64_t)end : 0;
    }
    uint64_t blocks = size / (uint64_t)bs;
    if (blocks == 0) {
        fprintf(stderr, "randio: %s is smaller than one %ld-byte block\n", argv[1], bs);
        return 1;
    }
    char *buf;
    if (posix_memalign((void **)&buf, 4096, (size_t)bs * (size_t)depth) != 0) {
        fprintf(stderr, "randio: out of memory\n");
        return 1;
    }
    memset(buf, 0x5a, (size_t)bs * (size_t)depth);

    uint64_t state = now_ns() | 1;
    uint64_t limit = (uint64_t)(seconds * 1e9);
    uint64_t start = now_ns(), elapsed = 0, ops = 0;
    if (depth == 1) {
        do {
            off_t off = (off_t)((next_random(&state) % blocks) * (uint64_t)bs);
            ssize_t got = writing ? pwrite(fd, buf, (size_t)bs, off) : pread(fd, buf, (size_t)bs, off);
            if (got != bs) return fail(writing ? "pwrite" : "pread", (long long)off, got < 0 ? -errno : 0);
            ops++;
            elapsed = now_ns() - start;
        } while (elapsed < limit);
    } else {
        aio_context_t ctx = 0;
        if (syscall(SYS_io_setup, depth, &ctx) != 0) {
            fprintf(stderr, "randio: io_setup(%d): %s\n", depth, strerror(errno));
            return 1;
        }
        static struct iocb cbs[MAX_DEPTH];
        static struct io_event events[MAX_DEPTH];
        struct iocb *one[1];
        int inflight = 0;
        for (int i = 0; i < depth; i++) {
            cbs[i].aio_fildes = (uint32_t)fd;
            cbs[i].aio_lio_opcode = writing ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
            cbs[i].aio_buf = (uint64_t)(uintptr_t)(buf + (size_t)i * (size_t)bs);
            cbs[i].aio_nbytes = (uint64_t)bs;
            cbs[i].aio_data = (uint64_t)i;
        }
        /* Submits request i at a fresh random offset. */
#define SUBMIT(i)                                                                                                  \
    do {                                                                                                           \
        cbs[i].aio_offset = (int64_t)((next_random(&state) % blocks) * (uint64_t)bs);                             \
        one[0] = &cbs[i];                                                                                          \
        if (syscall(SYS_io_submit, ctx, 1, one) != 1) return fail("io_submit", (long long)cbs[i].aio_offset, -errno); \
        inflight++;                                                                                                \
    } while (0)
        for (int i = 0; i < depth; i++) SUBMIT(i);
        while (inflight > 0) {
            long n = syscall(SYS_io_getevents, ctx, 1, depth, events, NULL);
            if (n < 0) {
                if (errno == EINTR) continue;
                return fail("io_getevents", 0, -errno);
            }
            elapsed = now_ns() - start;
            for (long e = 0; e < n; e++) {
                int i = (int)events[e].data;
                inflight--;
                if (events[e].res != bs) return fail(writing ? "aio write" : "aio read", (long long)cbs[i].aio_offset, (long)events[e].res);
                ops++;
                if (elapsed < limit) SUBMIT(i);
            }
        }
        syscall(SYS_io_destroy, ctx);
    }

    printf("RANDIO mode=%s depth=%d ops=%llu ms=%llu iops=%.0f bs=%ld size=%llu\n", writing ? "write" : "read", depth,
           (unsigned long long)ops, (unsigned long long)(elapsed / 1000000u), ops * 1e9 / (double)elapsed, bs,
           (unsigned long long)size);
    close(fd);
    free(buf);
    return 0;
}
