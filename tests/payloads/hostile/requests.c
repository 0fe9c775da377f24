/* hostile: well-formed requests of each device type, so that the devices' deeper code runs: block I/O, net
 * frames and receive buffers, console text, rng buffers, balloon page lists and reports, vsock packets. */
#include "hostile.h"

static struct buf data_buf(struct fuzz *f, u32 len, u16 flags)
{
    struct buf b = { data_alloc(f, len, 16), len, flags };
    return b;
}

static void block_request(struct fuzz *f, struct slot *s, int q)
{
    static const u8 types[] = { 0, 0, 0, 1, 1, 1, 4, 8, 11, 13, 10, 99 };
    struct buf b[8];
    int n = 0;
    u32 type = types[below(f, sizeof types)];
    u32 sectors = chance(f, 1, 8) ? 1 + below(f, 256) : 1 + below(f, 8);
    u64 sector = s->capacity ? below(f, (u32)s->capacity) : below(f, 64);
    if (chance(f, 1, 10)) sector = s->capacity - below(f, 4);   /* at or past the end */
    b[n] = data_buf(f, 16, 0);
    w32(b[n].addr, type);
    w32(b[n].addr + 4, 0);
    w64(b[n].addr + 8, sector);
    n++;
    if (type == 0 || type == 1) {
        u32 total = sectors * 512, pieces = 1 + below(f, 3);
        for (u32 i = 0; i < pieces && total; i++) {
            u32 len = i + 1 == pieces ? total : 512 * (1 + below(f, total / 512));
            if (len > total) len = total;
            b[n++] = data_buf(f, len, type == 0 ? D_WRITE : 0);
            total -= len;
        }
    } else if (type == 8) {
        b[n++] = data_buf(f, 20, D_WRITE);
    } else if (type == 11 || type == 13) {
        u32 segments = 1 + below(f, 3);
        b[n] = data_buf(f, 16 * segments, 0);
        for (u32 i = 0; i < segments; i++) {
            w64(b[n].addr + 16 * i, s->capacity ? below(f, (u32)s->capacity) : 0);
            w32(b[n].addr + 16 * i + 8, 1 + below(f, 64));
            w32(b[n].addr + 16 * i + 12, below(f, 2));
        }
        n++;
    }
    b[n++] = data_buf(f, 1, D_WRITE);
    submit(f, s, q, b, n);
}

static void net_request(struct fuzz *f, struct slot *s, int q)
{
    struct buf b[4];
    if (q == 0) {                                       /* receive buffers */
        u32 len = chance(f, 1, 2) ? 1526 : chance(f, 1, 2) ? 4096 : 65562;
        b[0] = data_buf(f, len, D_WRITE);
        submit(f, s, q, b, 1);
        return;
    }
    /* Transmit: the 12-byte header (mostly plain, sometimes checksum or GSO requests) and an Ethernet frame. */
    u32 frame = chance(f, 1, 8) ? 14 + below(f, 65536 - 14) : 60 + below(f, 1455);
    b[0] = data_buf(f, 12 + frame, 0);
    u64 h = b[0].addr;
    for (u32 i = 0; i < 12; i++) w8(h + i, 0);
    if (chance(f, 1, 4)) {
        w8(h, (u8)below(f, 4));                         /* flags: NEEDS_CSUM, DATA_VALID */
        w8(h + 1, (u8)(chance(f, 1, 2) ? below(f, 5) : rnd(f)));   /* gso_type */
        w16(h + 2, (u16)below(f, 128));                 /* hdr_len */
        w16(h + 4, (u16)rnd(f));                        /* gso_size */
        w16(h + 6, (u16)below(f, 100));                 /* csum_start */
        w16(h + 8, (u16)below(f, 40));                  /* csum_offset */
    }
    u64 e = h + 12;
    for (int i = 0; i < 6; i++) w8(e + (u32)i, 0xff);
    static const u8 mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    for (int i = 0; i < 6; i++) w8(e + 6 + (u32)i, mac[i]);
    w16(e + 12, chance(f, 1, 2) ? 0x0608 : 0x0008);     /* ARP or IPv4, big-endian */
    int n = 1;
    if (chance(f, 1, 3)) {                              /* header and frame in separate buffers */
        b[1].addr = h + 12;
        b[1].len = frame;
        b[1].flags = 0;
        b[0].len = 12;
        n = 2;
    }
    submit(f, s, q, b, n);
}

static void console_request(struct fuzz *f, struct slot *s, int q)
{
    struct buf b[1];
    if (q == 0) {
        b[0] = data_buf(f, 1 + below(f, 4096), D_WRITE);
    } else {
        static const char text[] = "hostile guest on hvc0\n";
        b[0] = data_buf(f, sizeof text - 1, 0);
        for (u32 i = 0; i < sizeof text - 1; i++) w8(b[0].addr + i, (u8)text[i]);
        if (chance(f, 1, 4)) b[0].len = 1 + below(f, 8192);     /* whatever the data area holds */
    }
    submit(f, s, q, b, 1);
}

static void rng_request(struct fuzz *f, struct slot *s, int q)
{
    struct buf b[2];
    int n = 1 + (int)below(f, 2);
    for (int i = 0; i < n; i++) b[i] = data_buf(f, chance(f, 1, 8) ? 1 + below(f, 65536) : 1 + below(f, 512), D_WRITE);
    submit(f, s, q, b, n);
}

static void balloon_request(struct fuzz *f, struct slot *s, int q)
{
    struct buf b[8];
    int n = 1 + (int)below(f, 4);
    if (q < 2) {
        /* A page list: one stretch of the PFN area from a 4-byte aligned start, cut into n pieces at any byte
         * but one that is 3 mod 4 (see the rules in hostile.h). */
        u32 words = 1 + below(f, chance(f, 1, 8) ? 4096 : 64);
        u64 start = 4UL * below(f, PFN_AREA_SIZE / 4 - words);
        u32 total = 4 * words;
        if (chance(f, 1, 4)) fill_pfn_area(f, 256);
        for (int i = 0; i < n; i++) {
            u32 len = i + 1 == n ? total : below(f, total + 1);
            if (i + 1 < n && ((start + len) & 3) == 3) len--;   /* no piece may start at 3 mod 4 */
            b[i].addr = PFN_AREA + start;
            b[i].len = len;
            b[i].flags = 0;
            start += len;
            total -= len;
        }
    } else {
        /* Free page reports: page-aligned stretches of the data area, which the device may discard. */
        for (int i = 0; i < n; i++) b[i] = data_buf(f, 4096u << below(f, 8), D_WRITE);
    }
    submit(f, s, q, b, n);
}

static void vsock_request(struct fuzz *f, struct slot *s, int q)
{
    struct buf b[3];
    if (q != 1) {                                       /* receive or event buffers */
        b[0] = data_buf(f, q == 0 ? 44 + below(f, 8192) : 8, D_WRITE);
        submit(f, s, q, b, 1);
        return;
    }
    static const u8 ops[] = { 1, 1, 5, 5, 5, 6, 7, 4, 3, 2, 0, 9 };
    u32 op = ops[below(f, sizeof ops)];
    u32 len = op == 5 ? below(f, chance(f, 1, 8) ? 70000 : 2048) : 0;
    b[0] = data_buf(f, 44 + len, 0);
    u64 h = b[0].addr;
    w64(h, chance(f, 1, 10) ? rnd(f) : 3);              /* src_cid: the guest's */
    w64(h + 8, chance(f, 1, 10) ? rnd(f) : 2);          /* dst_cid: the host */
    w32(h + 16, 1000 + below(f, 4));                    /* src_port: a few, so packets meet connections */
    w32(h + 20, chance(f, 3, 4) ? 6000 : below(f, 7000));   /* dst_port: 6000 has a listener */
    w32(h + 24, chance(f, 1, 16) ? (u32)rnd(f) : len);
    w16(h + 28, chance(f, 1, 16) ? (u16)rnd(f) : 1);    /* type: stream */
    w16(h + 30, (u16)op);
    w32(h + 32, op == 4 ? 1 + below(f, 3) : 0);         /* flags: shutdown directions */
    w32(h + 36, 256 * 1024);                            /* buf_alloc */
    w32(h + 40, (u32)rnd(f) & 0xFFFF);                  /* fwd_cnt */
    int n = 1;
    if (len && chance(f, 1, 2)) {                       /* payload in its own buffer */
        b[1].addr = h + 44;
        b[1].len = len;
        b[1].flags = 0;
        b[0].len = 44;
        n = 2;
    }
    submit(f, s, q, b, n);
}

void valid_request(struct fuzz *f, struct slot *s)
{
    int q = (int)below(f, QUEUES), tries = QUEUES;
    while (!s->q[q].good && tries--) q = (q + 1) % QUEUES;
    if (!s->q[q].good) return;
    if (outstanding(s, q) >= ring_size(&s->q[q])) {
        notify(s, (u32)q);                              /* full: remind the device */
        return;
    }
    switch (s->device_id) {
    case ID_BLOCK: block_request(f, s, q); break;
    case ID_NET: net_request(f, s, q); break;
    case ID_CONSOLE: console_request(f, s, q); break;
    case ID_RNG: rng_request(f, s, q); break;
    case ID_BALLOON: balloon_request(f, s, q); break;
    case ID_VSOCK: vsock_request(f, s, q); break;
    default: break;
    }
}

