/*
 * hostile: a guest that attacks every virtio-mmio device of the machine from the inside.
 *
 * Command line (the VMM copies it to 0x20000): "seed=<n> iterations=<n>" (decimal or 0x hex; defaults 1 and
 * 2000). A xorshift generator seeded from <seed> picks, for each step, one of the 10 virtio-mmio windows and one
 * action against it: a driver initialisation (often with a deviation: no reset, bad features, a queue skipped,
 * not ready, oddly sized or misplaced, FAILED or DRIVER_OK out of order), a well-formed request of the device's
 * type (block read/write/flush/get-id/discard, net frames and receive buffers, console text, rng buffers, balloon
 * page lists and reports, vsock packets), a random descriptor chain (random addresses, lengths, flags, next
 * indices, loops, indirect tables, available-index jumps), a random register write or read of any width at any
 * offset (config space included), a notification of any queue index, a status change, or a look at the status.
 * Interrupts stay off; InterruptStatus is read and acknowledged. A '.' is printed every 256 steps; at the end:
 *
 *   HOSTILE-SLOT <n> id=<device id> inits=<n> activations=<n> needs-reset=<looks that saw it> used=<n>
 *   HOSTILE-DONE seed=<n> steps=<n> needs-reset=<windows seen with DEVICE_NEEDS_RESET> activations=<n> used=<n>
 *
 * and the guest resets through the i8042, which ends the VMM with exit 0. Whatever the devices do, the guest
 * itself must survive: everything it hands a device obeys the rules in hostile.h.
 *
 * Built from this folder as freestanding C by scripts/build-payloads.sh: position independent, no absolute
 * relocations, no pointers in static data (the same bytes run at 0x1000000 and at 0x100200).
 */
#include "entry.h"
#include "hostile.h"

/* One action against window s; the weights keep devices set up and working most of the time. */
static void step(struct fuzz *f, struct slot *s)
{
    if (!s->device_id) {                                /* no device: the window is still probed */
        if (chance(f, 1, 2)) mmio_write(s->base + random_offset(f, 4), random_value(f), (int)pick_width(f));
        else random_read(f, s);
        return;
    }
    if (chance(f, s->active ? 3 : 35, 100)) {
        init_device(f, s);
        return;
    }
    u32 r = below(f, 100);
    if (r < 30) valid_request(f, s);
    else if (r < 45) {
        f->mutate = 1;
        valid_request(f, s);
        f->mutate = 0;
    } else if (r < 60) random_chain(f, s);
    else if (r < 71) random_write(f, s);
    else if (r < 78) random_read(f, s);
    else if (r < 84) notify_random(f, s);
    else if (r < 95) look(f, s);
    else status_poke(f, s);
}

/* ---- Discovery and the run ---- */
static void probe(struct slot *s)
{
    if (r32(s->base + R_MAGIC) != MAGIC || r32(s->base + R_VERSION) != 2) return;
    s->device_id = r32(s->base + R_DEVICE_ID);
    if (!s->device_id) return;
    write_status(s, 0);
    for (int q = 0; q < QUEUES; q++) {
        set_queue_sel(s, (u32)q);
        u32 max = r32(s->base + R_QUEUE_NUM_MAX);
        s->q[q].max = (u16)(max > 0xFFFF ? 0xFFFF : max);
        s->q[q].size = s->q[q].max;
    }
    if (s->device_id == ID_BLOCK)
        s->capacity = r32(s->base + R_CONFIG) | (u64)r32(s->base + R_CONFIG + 4) << 32;
}

static void reset_machine(void)
{
    outb(I8042_COMMAND, 0xFE);
    for (;;) __asm__ volatile("cli; hlt");
}

void hostile_main(void)
{
    struct fuzz fz;
    struct fuzz *f = &fz;
    memset(f, 0, sizeof *f);
    f->seed = command_line_value("seed=", 1);
    u64 iterations = command_line_value("iterations=", 2000);
    /* splitmix64 of the seed: neighbouring seeds start far apart; xorshift needs a non-zero state. */
    u64 z = f->seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    f->rng = (z ^ (z >> 31)) | 1;
    read_e820(f);
    uart_puts("HOSTILE-START");
    putkv(" seed=", f->seed);
    putkv(" iterations=", iterations);
    putkv(" ram-mib=", f->ram_end >> 20);
    if (f->ram_low_end < AREAS_END) {
        uart_puts("\nHOSTILE-ERROR the guest needs RAM up to 64 MiB\n");
        reset_machine();
    }
    fill_pfn_area(f, PFN_AREA_SIZE / 4);
    uart_puts(" devices=");
    for (int n = 0; n < SLOTS; n++) {
        struct slot *s = &f->slot[n];
        s->index = n;
        s->base = MMIO_BASE + (u64)n * WINDOW;
        probe(s);
        putu(s->device_id);
        uart_putc(n + 1 < SLOTS ? ',' : '\n');
    }
    for (f->step = 0; f->step < iterations; f->step++) {
        step(f, &f->slot[below(f, SLOTS)]);
        if ((f->step & 255) == 255) uart_putc('.');
    }
    uart_putc('\n');
    u32 needs_reset = 0, activations = 0, used = 0;
    for (int n = 0; n < SLOTS; n++) {
        struct slot *s = &f->slot[n];
        if (s->device_id) look(f, s);
        needs_reset += s->needs_reset != 0;
        activations += s->activations;
        used += s->used;
        putkv("HOSTILE-SLOT ", (u64)n);
        putkv(" id=", s->device_id);
        putkv(" inits=", s->inits);
        putkv(" activations=", s->activations);
        putkv(" needs-reset=", s->needs_reset);
        putkv(" used=", s->used);
        uart_putc('\n');
    }
    putkv("HOSTILE-DONE seed=", f->seed);
    putkv(" steps=", f->step);
    putkv(" needs-reset=", needs_reset);
    putkv(" activations=", activations);
    putkv(" used=", used);
    uart_putc('\n');
    reset_machine();
}

/* The boot stack has only the 4 KiB above the zero page: move it. */
PAYLOAD_ENTRY(hostile_main, STACK_TOP);

