/*
 * hostile: shared definitions of the hostile payload guest (see main.c for what it does).
 *
 * Whatever the devices do, the guest itself must survive, so everything it hands a device obeys these rules
 * (addresses and lengths come from memory.c, register writes go through driver.c):
 *   - Rings and indirect tables live in the ring area, one 64 KiB block per (window, queue); descriptors found
 *     there were all written by this guest under these rules, and nothing but a used ring is device-writable.
 *   - A ring address register is written only with its own queue's block (perhaps a few bytes off) or an address
 *     outside RAM, only while the guest knows QueueSel; QueueReady is set only on a queue whose three ring
 *     addresses were written since the last reset (after a reset they are 0, and page 0 must not become a ring).
 *   - A device-writable buffer lies in the data area (it may run past its end into unused RAM), outside RAM, or
 *     has length 0. A readable buffer may also point at low RAM: devices only read it.
 *   - The balloon discards the pages its inflate queue names and the buffers of its reporting queue. Its page
 *     lists therefore come only from the PFN area, whose 32-bit words all have their three low bytes non-zero,
 *     so that only bytes at addresses 3 mod 4 are ever zero, and no list buffer starts at an address 3 mod 4:
 *     however the device joins buffers (a page number may span two), no two zero bytes meet, every page number
 *     it forms has byte 2 or 3 non-zero and so is at or above 256 MiB, far above everything this guest uses.
 *     Report buffers and anything else the balloon gets are in the data area, outside RAM or empty.
 */
#ifndef HOSTILE_H
#define HOSTILE_H

#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef u16 u16u __attribute__((aligned(1), may_alias));
typedef u32 u32u __attribute__((aligned(1), may_alias));
typedef u64 u64u __attribute__((aligned(1), may_alias));

/* ---- The guest's memory map ---- */
#define ZERO_PAGE       0x7000UL        /* boot_params from the VMM: the e820 map */
#define COMMAND_LINE    0x20000UL
#define STACK_TOP       0x1F00000       /* above the payload (0x1000000 or 0x100200), below every device target */
#define RING_AREA       0x2000000UL     /* SLOTS x QUEUES blocks of BLOCK_SIZE */
#define BLOCK_SIZE      0x10000UL
#define DESC_OFF        0x0000UL        /* room for 1280 descriptors: a 1024-entry table even when misplaced */
#define AVAIL_OFF       0x5000UL
#define USED_OFF        0x6000UL
#define INDIRECT_OFF    0x9000UL
#define INDIRECT_SIZE   0x7000UL
#define PFN_AREA        0x2800000UL     /* balloon page lists (see above) */
#define PFN_AREA_SIZE   0x10000UL       /* 16384 words: room for the longest list (4096); the guest fills
                                           every word at start, and where each instruction is emulated (a
                                           PVM host) a 1 MiB area took 25 s of each seed's run */
#define DATA_AREA       0x3000000UL     /* every device-writable buffer */
#define DATA_SIZE       0x1000000UL
#define AREAS_END       0x4000000UL     /* the guest needs RAM up to here */
#define BALLOON_FLOOR   0x10000000UL    /* no page the balloon may discard lies below this */

/* ---- Devices ---- */
#define MMIO_BASE       0xF0100000UL
#define WINDOW          0x200UL
#define SLOTS           10
#define QUEUES          8               /* queue indices the guest sets up and attacks */
#define MAX_RING        1024            /* largest queue size the guest gives a queue */
#define MAGIC           0x74726976      /* "virt" */

#define R_MAGIC         0x000
#define R_VERSION       0x004
#define R_DEVICE_ID     0x008
#define R_DEV_FEATURES  0x010
#define R_DEV_FEAT_SEL  0x014
#define R_DRV_FEATURES  0x020
#define R_DRV_FEAT_SEL  0x024
#define R_QUEUE_SEL     0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM     0x038
#define R_QUEUE_READY   0x044
#define R_QUEUE_NOTIFY  0x050
#define R_INT_STATUS    0x060
#define R_INT_ACK       0x064
#define R_STATUS        0x070
#define R_DESC_LOW      0x080           /* then DESC_HIGH, and the driver and device areas at 0x90 and 0xa0 */
#define R_RINGS_END     0x0a8
#define R_CONFIG_GEN    0x0fc
#define R_CONFIG        0x100

#define S_ACK           0x01
#define S_DRIVER        0x02
#define S_DRIVER_OK     0x04
#define S_FEATURES_OK   0x08
#define S_NEEDS_RESET   0x40
#define S_FAILED        0x80

#define F_INDIRECT      (1ULL << 28)
#define F_EVENT_IDX     (1ULL << 29)
#define F_VERSION_1     (1ULL << 32)

#define D_NEXT          1
#define D_WRITE         2
#define D_INDIRECT      4

#define ID_NET          1
#define ID_BLOCK        2
#define ID_CONSOLE      3
#define ID_RNG          4
#define ID_BALLOON      5
#define ID_VSOCK        19

#define UART            0x3f8
#define I8042_COMMAND   0x64

/* ---- State ---- */
struct queue {
    u16 max;            /* QueueNumMax; 0: no such queue */
    u16 size;           /* QueueNum as the device holds it, as far as the guest knows */
    u16 avail_idx;      /* the next available index the guest publishes */
    u16 used_seen;      /* the used index when the guest last looked */
    u16 next_desc;      /* the next descriptor a request takes (round robin) */
    u16 next_indirect;  /* the next free entry of the indirect area */
    u8 rings_set;       /* bit 0, 1, 2: desc, driver, device area low half written since the last reset */
    u8 good;            /* set up at its own block, power-of-two size, ready: fit for well-formed requests */
};

struct slot {
    int index;          /* the window's number */
    u64 base;
    u32 device_id;      /* 0: no virtio device in this window */
    int qsel;           /* QueueSel as the guest knows it; -1 after a write that may have changed it unseen */
    u64 offered, accepted;
    u64 capacity;       /* virtio-blk: sectors */
    u8 active;          /* DRIVER_OK written after a complete set-up, no NEEDS_RESET seen since */
    u32 inits, activations, needs_reset, used;
    struct queue q[QUEUES];
};

struct fuzz {
    u64 rng;
    int mutate;         /* the next well-formed request gets one flaw (see mutate) */
    u64 seed;
    u64 step;
    u64 ram_end;        /* first byte past the highest RAM */
    u64 ram_low_end;    /* end of the RAM below 4 GiB */
    u64 data_next;      /* bump allocator over the data area */
    struct slot slot[SLOTS];
};

/* One buffer of a well-formed request. */
struct buf {
    u64 addr;
    u32 len;
    u16 flags;          /* D_WRITE or 0 */
};

#define MAX_BUFS 8      /* buffers of a well-formed request, before mutate adds one */

/* ---- Memory and port access ---- */

/* A physical address as a pointer (the first 4 GiB are identity mapped). */
#define PHYS(type, a) ((volatile type *)(uintptr_t)(a))

static inline void w8(u64 a, u8 v) { *PHYS(u8, a) = v; }
static inline void w16(u64 a, u16 v) { *PHYS(u16u, a) = v; }
static inline void w32(u64 a, u32 v) { *PHYS(u32u, a) = v; }
static inline void w64(u64 a, u64 v) { *PHYS(u64u, a) = v; }
static inline u16 r16(u64 a) { return *PHYS(u16u, a); }
static inline u32 r32(u64 a) { return *PHYS(u32u, a); }

static inline void outb(u16 port, u8 v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

/* Orders the guest's ring stores: x86 keeps stores in order, the compiler must too. */
static inline void barrier(void)
{
    __asm__ volatile("" : : : "memory");
}

/* ---- lib.c: basics, randomness, boot information ---- */
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);
void uart_putc(char c);
void uart_puts(const char *s);
void putu(u64 v);
void putkv(const char *key, u64 v);
void mmio_write(u64 a, u64 v, int width);
u64 mmio_read(u64 a, int width);
u64 rnd(struct fuzz *f);
u32 below(struct fuzz *f, u32 n);
int chance(struct fuzz *f, u32 n, u32 d);
u32 pick_width(struct fuzz *f);
u16 pow2_size(struct fuzz *f, u16 max);
u64 command_line_value(const char *key, u64 fallback);
void read_e820(struct fuzz *f);

/* ---- memory.c: addresses the rules allow ---- */
u64 queue_block(const struct slot *s, int q);
u64 not_ram(struct fuzz *f);
u64 data_alloc(struct fuzz *f, u32 len, u32 align);
void fill_pfn_area(struct fuzz *f, u32 words);
int balloon_lists(const struct slot *s, int q);
void random_buffer(struct fuzz *f, const struct slot *s, int q, int writable, u64 *addr, u32 *len);
u32 ring_low(struct fuzz *f, const struct slot *s, int q, int which);
u32 ring_high(struct fuzz *f);

/* ---- driver.c: registers under the rules, set-up, status ---- */
void set_queue_sel(struct slot *s, u32 q);
void write_status(struct slot *s, u32 v);
void init_device(struct fuzz *f, struct slot *s);
void random_write(struct fuzz *f, struct slot *s);
void random_read(struct fuzz *f, struct slot *s);
void notify_random(struct fuzz *f, struct slot *s);
void look(struct fuzz *f, struct slot *s);
void status_poke(struct fuzz *f, struct slot *s);
u32 random_offset(struct fuzz *f, u32 width);
u64 random_value(struct fuzz *f);

/* ---- chains.c: rings, chains and their flaws ---- */
int queue_count(const struct slot *s);
u16 ring_size(const struct queue *qs);
u16 outstanding(struct slot *s, int q);
void notify(struct slot *s, u32 q);
void submit(struct fuzz *f, struct slot *s, int q, const struct buf *request, int n);
void random_chain(struct fuzz *f, struct slot *s);

/* ---- requests.c: well-formed requests of each device type ---- */
void valid_request(struct fuzz *f, struct slot *s);

#endif
