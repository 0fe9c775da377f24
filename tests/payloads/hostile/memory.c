/* hostile: the addresses and lengths the rules in hostile.h allow, for buffers, page lists and ring registers. */
#include "hostile.h"

u64 queue_block(const struct slot *s, int q)
{
    return RING_AREA + ((u64)s->index * QUEUES + (u64)q) * BLOCK_SIZE;
}

/* An address where no RAM is (a length may make some of them reach RAM's end from below: see straddle). */
u64 not_ram(struct fuzz *f)
{
    switch (below(f, 7)) {
    case 0: return 0xC0000000UL;                        /* the boot timer */
    case 1: return MMIO_BASE + below(f, SLOTS) * WINDOW; /* a virtio window itself */
    case 2: return 0xFEE00000UL;                        /* the local APIC */
    case 3: return f->ram_end + below(f, 0x10000);
    case 4: return 0xFFFFFFFFFFFFF000ULL + below(f, 0x1000);
    case 5: return 1ULL << (40 + below(f, 23));
    default: return 0xC0000000UL + below(f, 0x3F000000) ;
    }
}

/* An address 8 bytes below the end of RAM under 4 GiB, when that is far above the guest's areas; else not RAM. */
static u64 straddle(struct fuzz *f)
{
    return f->ram_low_end >= BALLOON_FLOOR ? f->ram_low_end - 8 : not_ram(f);
}

u64 data_alloc(struct fuzz *f, u32 len, u32 align)
{
    u64 at = (f->data_next + align - 1) & ~(u64)(align - 1);
    if (at + len > DATA_SIZE) at = 0;
    f->data_next = at + len;
    return DATA_AREA + at;
}

/* A buffer length: often small, sometimes 0, sector-sized, large or far beyond RAM. */
static u32 buffer_length(struct fuzz *f)
{
    switch (below(f, 20)) {
    case 0: case 1: return 0;
    case 2: case 3: case 4: return 1 + below(f, 64);
    case 5: return 512 * (1 + below(f, 16));
    case 6: return 0x10000 + below(f, 0x10000);
    case 7: return below(f, 2) ? 0xFFFFFFFFu : 0x80000000u;
    case 8: return 0x100000u << below(f, 5);            /* 1 to 16 MiB: may run past the data area */
    default: return 1 + below(f, 4096);
    }
}

/* A page list word for the PFN area: bytes 0 to 2 non-zero (see the rules in hostile.h); about half of them name
 * RAM above BALLOON_FLOOR when there is any. */
static u32 safe_pfn(struct fuzz *f)
{
    u64 first = BALLOON_FLOOR >> 12, end = f->ram_end >> 12;
    u32 v;
    if (end > first + 1 && chance(f, 1, 2)) v = (u32)(first + below(f, (u32)(end - first)));
    else if (chance(f, 1, 2)) v = (u32)end + below(f, 0x1000);
    else v = (u32)rnd(f);
    for (int b = 0; b < 3; b++)
        if (!((v >> (8 * b)) & 0xff)) v |= 1u << (8 * b);
    return v;
}

void fill_pfn_area(struct fuzz *f, u32 words)
{
    u32 start = below(f, PFN_AREA_SIZE / 4);
    for (u32 i = 0; i < words; i++) w32(PFN_AREA + 4UL * ((start + i) % (PFN_AREA_SIZE / 4)), safe_pfn(f));
}

int balloon_lists(const struct slot *s, int q)
{
    return s->device_id == ID_BALLOON && q < 2;
}

/* A buffer for a random descriptor of queue q under the rules in hostile.h. */
void random_buffer(struct fuzz *f, const struct slot *s, int q, int writable, u64 *addr, u32 *len)
{
    u32 r = below(f, 100);
    *len = buffer_length(f);
    if (balloon_lists(s, q) && !writable) {
        if (r < 80) {
            u64 at = 4UL * below(f, PFN_AREA_SIZE / 4);
            *addr = PFN_AREA + at;
            if (*len > PFN_AREA_SIZE - at && *len < 0x80000000u) *len = (u32)(PFN_AREA_SIZE - at);
        } else if (r < 90) {
            *addr = not_ram(f);
        } else {
            *addr = not_ram(f) * below(f, 2);           /* outside RAM or 0, with no length */
            *len = 0;
        }
        return;
    }
    if (r < 70) *addr = data_alloc(f, *len < 0x10000 ? *len : 0, 1u << below(f, 13));
    else if (r < 82) *addr = not_ram(f);
    else if (r < 87) *addr = straddle(f);
    else if (r < 92) {
        *addr = 0;
        if (writable || s->device_id == ID_BALLOON) *len = 0;
    } else if (r < 96 && !writable && s->device_id != ID_BALLOON) {
        *addr = below(f, 0x2000000);                    /* low RAM, this guest's code included: read only */
    } else {
        *addr = not_ram(f);
        *len = 0;                                       /* the zero-length buffer outside RAM */
    }
}

/* The low half of a ring address for queue q (which: 0 desc, 1 driver, 2 device area). */
u32 ring_low(struct fuzz *f, const struct slot *s, int q, int which)
{
    static const u16 offsets[3] = { DESC_OFF, AVAIL_OFF, USED_OFF };
    static const u8 misplace[3][3] = { { 8, 4, 1 }, { 1, 2, 3 }, { 2, 4, 8 } };
    u32 r = below(f, 40);
    if (q >= QUEUES || r == 0) return (u32)not_ram(f) | 0xC0000000u;
    if (r == 1) return f->ram_low_end >= BALLOON_FLOOR ? (u32)(f->ram_low_end - 8) : 0xC0000000u;
    if (r == 2) return 0xF0100000u;
    if (r == 3 && which == 1) return 0;                 /* the driver area is only read */
    u64 a = queue_block(s, q) + offsets[which];
    if (r == 4) a += misplace[which][below(f, 3)];
    return (u32)a;
}

u32 ring_high(struct fuzz *f)
{
    u32 r = below(f, 30);
    return r == 0 ? 1 : r == 1 ? 0xFFFFFFFFu : 0;
}

