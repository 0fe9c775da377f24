/* hostile: split virtqueue rings from the driver's side: descriptors, publishing, notifications, well-formed
 * chains (perhaps with one flaw) and random ones. */
#include "hostile.h"

/* ---- Rings ---- */
u16 ring_size(const struct queue *qs)
{
    u16 size = qs->size ? qs->size : 1;
    return size > MAX_RING ? MAX_RING : size;
}

static void put_desc(u64 table, u32 i, u64 addr, u32 len, u16 flags, u16 next)
{
    u64 d = table + 16UL * i;
    w64(d, addr);
    w32(d + 8, len);
    w16(d + 12, flags);
    w16(d + 14, next);
}

/* Puts head in the next available slot and moves the index by step (1 unless the guest lies). */
static void publish(struct slot *s, int q, u16 head, u16 step)
{
    struct queue *qs = &s->q[q];
    u64 avail = queue_block(s, q) + AVAIL_OFF;
    w16(avail + 4 + 2UL * (qs->avail_idx % ring_size(qs)), head);
    barrier();
    qs->avail_idx = (u16)(qs->avail_idx + step);
    w16(avail + 2, qs->avail_idx);
}

void notify(struct slot *s, u32 q)
{
    w32(s->base + R_QUEUE_NOTIFY, q);
}

/* Counts what the device used on queue q since the last look; returns the chains still outstanding. */
u16 outstanding(struct slot *s, int q)
{
    struct queue *qs = &s->q[q];
    u16 used = r16(queue_block(s, q) + USED_OFF + 2);
    s->used += (u16)(used - qs->used_seen);
    qs->used_seen = used;
    return (u16)(qs->avail_idx - used);
}

/* Gives the chain b[0..n) one flaw and returns its new length (room for n + 1 buffers): an extra empty buffer
 * (outside RAM, at 0 or in the data area), an empty or misplaced buffer, one missing, the wrong direction, a
 * length off by one or huge, an address off by a few bytes. Balloon page lists only get the flaws that add no
 * bytes or that make the device refuse the whole chain (see the rules in hostile.h). */
static int mutate(struct fuzz *f, const struct slot *s, int q, struct buf *b, int n)
{
    int i = (int)below(f, (u32)n);
    switch (below(f, balloon_lists(s, q) ? 4 : 8)) {
    case 0: {
        int at = (int)below(f, (u32)n + 1);
        for (int k = n; k > at; k--) b[k] = b[k - 1];
        u32 r = below(f, 3);
        b[at].addr = r == 0 ? not_ram(f) : r == 1 ? 0 : data_alloc(f, 0, 1);
        b[at].len = 0;
        /* Readable buffers come first: take the direction the neighbours allow. */
        int after_writable = at > 0 && (b[at - 1].flags & D_WRITE);
        int before_readable = at < n && !(b[at + 1].flags & D_WRITE);
        b[at].flags = after_writable ? D_WRITE : before_readable ? 0 : (u16)(below(f, 2) * D_WRITE);
        return n + 1;
    }
    case 1: b[i].len = 0; break;
    case 2: b[i].addr = not_ram(f); break;
    case 3:
        if (n == 1) break;
        for (int k = i; k + 1 < n; k++) b[k] = b[k + 1];
        return n - 1;
    case 4: b[i].flags ^= D_WRITE; break;
    case 5: b[i].len = b[i].len && chance(f, 1, 2) ? b[i].len - 1 : b[i].len + 1; break;
    case 6: b[i].len = chance(f, 1, 2) ? 0xFFFFFFFFu : 0x1000000u; break;
    default: b[i].addr += 1 + below(f, 7); break;
    }
    return n;
}

/* Submits one chain of n buffers on queue q: direct, or through an indirect table if that was negotiated. */
void submit(struct fuzz *f, struct slot *s, int q, const struct buf *request, int n)
{
    struct buf b[MAX_BUFS + 1];
    for (int i = 0; i < n; i++) b[i] = request[i];
    if (f->mutate) n = mutate(f, s, q, b, n);
    struct queue *qs = &s->q[q];
    u64 base = queue_block(s, q);
    u16 size = ring_size(qs);
    if ((s->accepted & F_INDIRECT) && n > 1 && chance(f, 1, 4)) {
        if (qs->next_indirect + (u32)n > INDIRECT_SIZE / 16) qs->next_indirect = 0;
        u64 table = base + INDIRECT_OFF + 16UL * qs->next_indirect;
        qs->next_indirect = (u16)(qs->next_indirect + n);
        for (int i = 0; i < n; i++)
            put_desc(table, (u32)i, b[i].addr, b[i].len, (u16)(b[i].flags | (i + 1 < n ? D_NEXT : 0)), (u16)(i + 1));
        u16 head = qs->next_desc;
        qs->next_desc = (u16)((qs->next_desc + 1) % size);
        put_desc(base + DESC_OFF, head, table, 16u * (u32)n, D_INDIRECT, 0);
        publish(s, q, head, 1);
    } else {
        u16 head = qs->next_desc;
        for (int i = 0; i < n; i++) {
            u16 cur = qs->next_desc;
            qs->next_desc = (u16)((qs->next_desc + 1) % size);
            put_desc(base + DESC_OFF, cur, b[i].addr, b[i].len, (u16)(b[i].flags | (i + 1 < n ? D_NEXT : 0)),
                qs->next_desc);
        }
        publish(s, q, head, 1);
    }
    if (!chance(f, 1, 16)) notify(s, (u32)q);
}

/* ---- Random chains ---- */
static u16 random_flags(struct fuzz *f, int last)
{
    u16 flags = last ? 0 : D_NEXT;
    if (chance(f, 1, 8)) flags ^= D_NEXT;
    if (chance(f, 1, 3)) flags |= D_WRITE;
    if (chance(f, 1, 32)) flags |= (u16)(rnd(f) & 0xFFF8);
    return flags;
}

static u16 random_next(struct fuzz *f, u16 next, u16 size)
{
    u32 r = below(f, 16);
    if (r == 0) return (u16)rnd(f);                     /* anywhere, mostly outside the table */
    if (r < 3) return (u16)below(f, size);              /* anywhere inside: loops */
    return next;
}

/* Fills n random descriptors of an indirect table in queue q's block; returns its address. */
static u64 random_indirect(struct fuzz *f, struct slot *s, int q, u32 n)
{
    struct queue *qs = &s->q[q];
    if (qs->next_indirect + n > INDIRECT_SIZE / 16) qs->next_indirect = 0;
    u64 table = queue_block(s, q) + INDIRECT_OFF + 16UL * qs->next_indirect;
    qs->next_indirect = (u16)(qs->next_indirect + n);
    for (u32 i = 0; i < n; i++) {
        u16 flags = random_flags(f, i + 1 == n);
        u64 addr;
        u32 len;
        if (chance(f, 1, 16)) {                         /* an indirect table inside one */
            flags = (u16)(flags | D_INDIRECT);
            addr = table;
            len = 16 * n;
        } else {
            random_buffer(f, s, q, flags & D_WRITE, &addr, &len);
        }
        put_desc(table, i, addr, len, flags, random_next(f, (u16)(i + 1), (u16)n));
    }
    return table;
}

static u32 indirect_length(struct fuzz *f, u32 n)
{
    switch (below(f, 10)) {
    case 0: return 0;
    case 1: return 16 * n + 1 + below(f, 15);
    case 2: return 0xFFFFFFF0u;
    default: return 16 * n;
    }
}

int queue_count(const struct slot *s)
{
    int n = 0;
    while (n < QUEUES && s->q[n].max) n++;
    return n;
}

void random_chain(struct fuzz *f, struct slot *s)
{
    int nq = queue_count(s);
    int q = (int)(nq && chance(f, 9, 10) ? below(f, (u32)nq) : below(f, QUEUES));
    struct queue *qs = &s->q[q];
    u16 size = ring_size(qs);
    u64 table = queue_block(s, q) + DESC_OFF;
    u32 n = chance(f, 1, 8) ? 1 + below(f, size) : 1 + below(f, 8);
    u16 head = chance(f, 1, 4) ? (u16)below(f, size) : qs->next_desc, i = head;
    for (u32 k = 0; k < n; k++) {
        u16 next = (u16)((i + 1) % size);
        u16 flags = random_flags(f, k + 1 == n);
        u64 addr;
        u32 len;
        if ((s->accepted & F_INDIRECT || chance(f, 1, 4)) && chance(f, 1, 10)) {
            u32 entries = 1 + below(f, 16);
            flags = (u16)(flags | D_INDIRECT);
            addr = random_indirect(f, s, q, entries);
            len = indirect_length(f, entries);
        } else {
            random_buffer(f, s, q, flags & D_WRITE, &addr, &len);
        }
        put_desc(table, i, addr, len, flags, random_next(f, next, size));
        i = next;
    }
    qs->next_desc = i;
    u32 r = below(f, 20);
    u16 step = r == 0 ? 0 : r == 1 ? (u16)(2 + below(f, size)) : r == 2 ? (u16)rnd(f) : 1;
    if (chance(f, 1, 20)) head = (u16)(size + below(f, 0x10000 - size));   /* a head outside the table */
    publish(s, q, head, step);
    if (!chance(f, 1, 10)) notify(s, (u32)q);
}

