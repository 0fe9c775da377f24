/* hostile: the driver's side of the virtio-mmio registers. Every write goes through the rules in hostile.h
 * (ring addresses, QueueReady) and updates what the guest knows of the device (QueueSel, reset); the set-up
 * sequence takes one deviation a third of the time. */
#include "hostile.h"

/* ---- Registers under the rules ---- */
void set_queue_sel(struct slot *s, u32 q)
{
    w32(s->base + R_QUEUE_SEL, q);
    s->qsel = (int)q;
}

/* What the guest knows after a reset it wrote. */
static void forget_queues(struct slot *s)
{
    for (int q = 0; q < QUEUES; q++) {
        struct queue *qs = &s->q[q];
        qs->size = qs->max;
        qs->rings_set = 0;
        qs->good = 0;
        qs->avail_idx = qs->used_seen = qs->next_desc = 0;
    }
    s->active = 0;
}

void write_status(struct slot *s, u32 v)
{
    w32(s->base + R_STATUS, v);
    if (v == 0) {
        forget_queues(s);
        s->qsel = 0;
    }
}

/* Writes one ring address register of the selected queue (offset: 0x80 to 0xa4), or an 8-byte pair. */
static void ring_write(struct fuzz *f, struct slot *s, u32 offset, int allow_wide)
{
    if (s->qsel < 0) set_queue_sel(s, below(f, QUEUES + 1));
    int q = s->qsel, which = (int)(offset - R_DESC_LOW) / 0x10;
    if (allow_wide && chance(f, 1, 8)) {
        /* A 64-bit access to a pair: the transport may take or drop it; the guest learns nothing from it. */
        u64 v = ((u64)ring_high(f) << 32) | ring_low(f, s, q, which);
        mmio_write(s->base + R_DESC_LOW + 0x10UL * which, v, 8);
        return;
    }
    if (offset & 4) {
        w32(s->base + offset, ring_high(f));
        return;
    }
    w32(s->base + offset, ring_low(f, s, q, which));
    if (q < QUEUES) s->q[q].rings_set |= (u8)(1u << which);
}

static int may_set_ready(const struct slot *s)
{
    return s->qsel >= 0 && s->qsel < QUEUES && s->q[s->qsel].rings_set == 7;
}

/* A write of any width at any offset, made memory-safe: ring addresses come from ring_write, QueueReady is
 * cleared where the rules forbid it; afterwards the guest forgets what the write may have changed unseen. */
static void safe_write(struct fuzz *f, struct slot *s, u32 offset, u64 value, int width)
{
    u32 end = offset + (u32)width;
#define TOUCHES(reg, len) (offset < (reg) + (len) && (reg) < end)
    if (TOUCHES(R_DESC_LOW, R_RINGS_END - R_DESC_LOW)) {
        ring_write(f, s, R_DESC_LOW + 4 * below(f, 10), 1);
        return;
    }
    if (TOUCHES(R_QUEUE_READY, 1) && !may_set_ready(s)) value &= ~(1ULL << (8 * (R_QUEUE_READY - offset)));
    mmio_write(s->base + offset, value, width);
    if (TOUCHES(R_QUEUE_SEL, 4)) s->qsel = (offset == R_QUEUE_SEL && width == 4) ? (int)(u32)value : -1;
    if (TOUCHES(R_QUEUE_NUM, 4) && s->qsel >= 0 && s->qsel < QUEUES) s->q[s->qsel].good = 0;
    if (TOUCHES(R_STATUS, 4)) {
        if (offset == R_STATUS && width == 4 && (u32)value == 0) {
            forget_queues(s);
            s->qsel = 0;
        } else if (offset != R_STATUS || width != 4) {
            forget_queues(s);                           /* perhaps a reset: ring addresses may be 0 again */
            s->qsel = -1;
        }
    }
#undef TOUCHES
}

/* ---- Driver set-up ---- */
enum deviation {
    NONE, SKIP_RESET, NO_FEATURES_OK, BAD_FEATURES, SKIP_QUEUE, QUEUE_NOT_READY, ODD_SIZE, BAD_RING,
    FAILED_FIRST, DRIVER_OK_EARLY, NO_DRIVER_OK, READY_THEN_NOT, NO_QUEUES, DEVIATIONS
};

static void setup_queue(struct fuzz *f, struct slot *s, int q, enum deviation d, int odd)
{
    struct queue *qs = &s->q[q];
    u64 base = queue_block(s, q);
    set_queue_sel(s, (u32)q);
    u16 size = pow2_size(f, qs->max < MAX_RING ? qs->max : MAX_RING);
    if (d == ODD_SIZE && odd) {
        u32 r = below(f, 4);
        size = r == 0 ? 0 : r == 1 ? (u16)(qs->max + 1 + below(f, 64)) : r == 2 ? (u16)rnd(f) : (u16)(3 + 2 * below(f, 100));
    }
    w32(s->base + R_QUEUE_NUM, size);
    qs->size = size;
    /* Fresh rings: indices 0, as the device expects after a reset. */
    w16(base + AVAIL_OFF, chance(f, 1, 4) ? 1 : 0);     /* flags: sometimes NO_INTERRUPT */
    w16(base + AVAIL_OFF + 2, 0);
    w32(base + USED_OFF, 0);
    qs->avail_idx = qs->used_seen = qs->next_desc = 0;
    for (int which = 0; which < 3; which++) {
        u64 a = base + (which == 0 ? DESC_OFF : which == 1 ? AVAIL_OFF : USED_OFF);
        w32(s->base + R_DESC_LOW + 0x10UL * (u32)which, (u32)a);
        if (d == SKIP_RESET || chance(f, 1, 4)) w32(s->base + R_DESC_LOW + 0x10UL * (u32)which + 4, 0);   /* a reset zeroed it */
        qs->rings_set |= (u8)(1u << which);
    }
    if (d == BAD_RING && odd) ring_write(f, s, R_DESC_LOW + 0x10 * below(f, 3), 0);
    if (d == QUEUE_NOT_READY && odd) return;
    w32(s->base + R_QUEUE_READY, 1);
    if (d == READY_THEN_NOT && odd) {
        w32(s->base + R_QUEUE_READY, 0);
        return;
    }
    qs->good = !(odd && (d == ODD_SIZE || d == BAD_RING));
}

void init_device(struct fuzz *f, struct slot *s)
{
    enum deviation d = chance(f, 1, 3) ? (enum deviation)(1 + below(f, DEVIATIONS - 1)) : NONE;
    u32 nq = (u32)queue_count(s);
    int odd = nq ? (int)below(f, nq) : 0;               /* the queue a queue deviation hits */
    s->inits++;
    if (r32(s->base + R_STATUS) & S_NEEDS_RESET) s->needs_reset++;
    if (d != SKIP_RESET) write_status(s, 0);
    else for (int q = 0; q < QUEUES; q++) s->q[q].good = 0;
    write_status(s, S_ACK);
    write_status(s, S_ACK | S_DRIVER);
    if (d == DRIVER_OK_EARLY) write_status(s, S_ACK | S_DRIVER | S_DRIVER_OK);

    w32(s->base + R_DEV_FEAT_SEL, 0);
    u64 offered = r32(s->base + R_DEV_FEATURES);
    w32(s->base + R_DEV_FEAT_SEL, 1);
    offered |= (u64)r32(s->base + R_DEV_FEATURES) << 32;
    s->offered = offered;
    u64 accept = chance(f, 1, 2) ? offered : (offered & rnd(f)) | (offered & F_VERSION_1);
    if (d == BAD_FEATURES) accept = chance(f, 1, 2) ? rnd(f) : offered & ~F_VERSION_1;
    s->accepted = accept;
    w32(s->base + R_DRV_FEAT_SEL, 0);
    w32(s->base + R_DRV_FEATURES, (u32)accept);
    w32(s->base + R_DRV_FEAT_SEL, 1);
    w32(s->base + R_DRV_FEATURES, (u32)(accept >> 32));
    if (d != NO_FEATURES_OK) write_status(s, S_ACK | S_DRIVER | S_FEATURES_OK);
    r32(s->base + R_STATUS);                            /* a driver reads FEATURES_OK back */

    if (d != NO_QUEUES)
        for (int q = 0; q < (int)nq; q++) {
            if (d == SKIP_QUEUE && q == odd) continue;
            setup_queue(f, s, q, d, q == odd);
        }
    if (d == FAILED_FIRST) write_status(s, S_ACK | S_DRIVER | S_FEATURES_OK | S_FAILED);
    if (d == NO_DRIVER_OK) return;
    write_status(s, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    s->active = 1;
    s->activations++;
    /* Receive-side buffers, as a driver posts them at once. */
    for (int k = 0; k < 4; k++) valid_request(f, s);
}

/* ---- Other actions ---- */
u32 random_offset(struct fuzz *f, u32 width)
{
    static const u8 registers[] = {
        0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x20, 0x24, 0x30, 0x34, 0x38, 0x44, 0x50, 0x60, 0x64, 0x70, 0xfc,
    };
    u32 r = below(f, 10);
    u32 offset = r < 6 ? registers[below(f, sizeof registers)] : r < 9 ? R_CONFIG + below(f, 0x100) : below(f, WINDOW);
    if (chance(f, 7, 8)) offset &= ~(width - 1);        /* mostly aligned */
    return offset;
}

u64 random_value(struct fuzz *f)
{
    switch (below(f, 8)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 0xFFFFFFFFFFFFFFFFULL;
    case 3: return below(f, 16);
    case 4: return 1ULL << below(f, 64);
    default: return rnd(f);
    }
}

void random_write(struct fuzz *f, struct slot *s)
{
    u32 width = pick_width(f);
    safe_write(f, s, random_offset(f, width), random_value(f), (int)width);
}

void random_read(struct fuzz *f, struct slot *s)
{
    u32 width = pick_width(f);
    mmio_read(s->base + random_offset(f, width), (int)width);
}

void notify_random(struct fuzz *f, struct slot *s)
{
    u32 r = below(f, 10);
    u64 v = r < 7 ? below(f, QUEUES + 2) : r < 9 ? (u32)rnd(f) : 0xFFFF;
    u32 width = chance(f, 3, 4) ? 4 : pick_width(f);
    mmio_write(s->base + R_QUEUE_NOTIFY, v, (int)width);
}

/* Reads the status (counting NEEDS_RESET) and acknowledges whatever interrupts are pending. */
void look(struct fuzz *f, struct slot *s)
{
    u32 status = r32(s->base + R_STATUS);
    if (s->device_id && (status & S_NEEDS_RESET)) {
        s->needs_reset++;
        s->active = 0;                                  /* a driver would reset the device now */
    }
    u32 pending = r32(s->base + R_INT_STATUS);
    if (pending || chance(f, 1, 8)) w32(s->base + R_INT_ACK, chance(f, 7, 8) ? pending : (u32)rnd(f));
    for (int q = 0; q < QUEUES; q++)
        if (s->q[q].good) outstanding(s, q);
    if (chance(f, 1, 4)) r32(s->base + R_CONFIG_GEN);
}

void status_poke(struct fuzz *f, struct slot *s)
{
    u32 now = r32(s->base + R_STATUS);
    switch (below(f, 8)) {
    case 0: case 1: write_status(s, 0); break;
    case 2: write_status(s, now | S_FAILED); s->active = 0; break;
    case 3: write_status(s, now | S_DRIVER_OK); break;
    case 4: write_status(s, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK); break;
    case 5: write_status(s, now | S_NEEDS_RESET); break;
    case 6: write_status(s, S_FEATURES_OK); break;
    default: write_status(s, (u32)below(f, 0x100) | 1); break;
    }
}

