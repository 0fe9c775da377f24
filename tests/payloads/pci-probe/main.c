/*
 * pci-probe: a q35 guest's view of PCI configuration space, through both mechanisms.
 *
 *   1. Every function of bus 0 through the 0xCF8/0xCFC ports, then through ECAM at 0xB000_0000 (inside the 4 GiB
 *      the VMM's boot page tables identity-map), one line each:
 *        CF8 bb:dd.f vvvv:dddd class cccccc hdr hh
 *        ECAM bb:dd.f vvvv:dddd class cccccc hdr hh
 *      then "AGREE bus bb functions n" if the ID, class and header dwords of all 256 functions read the same both
 *      ways, else one "DISAGREE ..." line per difference.
 *   2. BAR 0 of the first virtio function (vendor 0x1af4) on bus 0, sized through 0xCF8/0xCFC with decoding off:
 *      all ones written, read back, the old value restored (and read back through ECAM):
 *        BAR bb:dd.f 0 kind mem64 size <16 hex digits> restored yes|no
 *   3. The first PCI bridge on bus 0: with its bus numbers cleared nothing answers on bus 1; programmed with
 *      primary 0, secondary 1, subordinate 1, bus 1 is enumerated as in step 1:
 *        BRIDGE bb:dd.f cleared bus01 empty|answers
 *        BRIDGE bb:dd.f buses 00 01 01
 *   4. "PCI-PROBE-DONE", then a reset through the i8042 (the VMM runs with -no-reboot, so it exits 0).
 */
#include <stdint.h>

#include "entry.h"

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define UART            0x3f8
#define I8042_CMD       0x64
#define CONFIG_ADDRESS  0xcf8
#define CONFIG_DATA     0xcfc
#define ECAM_BASE       0xb0000000UL
#define STACK_TOP       0x1f00000       /* above the payload (0x1000000 or 0x100200) */
#define VIRTIO_VENDOR   0x1af4
#define CLASS_BRIDGE    0x0604          /* PCI-to-PCI bridge: base class and subclass */

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u32 inl(u16 port)
{
    u32 v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static void putc(char c) { outb(UART, (u8)c); }

static void puts(const char *s)
{
    while (*s) putc(*s++);
}

/* Prints the low <digits> hex digits of v. */
static void puthex(u64 v, int digits)
{
    while (digits--) putc("0123456789abcdef"[(v >> (digits * 4)) & 0xf]);
}

/* ---- The two mechanisms; off is dword-aligned ---- */
static u32 address(int bus, int dev, int fn, int off)
{
    return 0x80000000u | (u32)bus << 16 | (u32)dev << 11 | (u32)fn << 8 | (u32)(off & 0xfc);
}

static u32 cf8_read(int bus, int dev, int fn, int off)
{
    outl(CONFIG_ADDRESS, address(bus, dev, fn, off));
    return inl(CONFIG_DATA);
}

static void cf8_write(int bus, int dev, int fn, int off, u32 v)
{
    outl(CONFIG_ADDRESS, address(bus, dev, fn, off));
    outl(CONFIG_DATA, v);
}

static volatile u32 *ecam(int bus, int dev, int fn, int off)
{
    return (volatile u32 *)(ECAM_BASE + ((u64)bus << 20 | (u64)dev << 15 | (u64)fn << 12 | (u64)off));
}

static u32 ecam_read(int bus, int dev, int fn, int off) { return *ecam(bus, dev, fn, off); }

typedef u32 (*reader)(int bus, int dev, int fn, int off);

static void put_bdf(int bus, int dev, int fn)
{
    puthex((u64)bus, 2);
    putc(':');
    puthex((u64)dev, 2);
    putc('.');
    puthex((u64)fn, 1);
}

/* Lists the functions of one bus as one mechanism sees them: function 0 of every device, the others only when
 * function 0's header says multi-function. Returns how many answered. */
static int list_bus(const char *name, reader read, int bus)
{
    int found = 0;
    for (int dev = 0; dev < 32; dev++) {
        for (int fn = 0; fn < 8; fn++) {
            u32 id = read(bus, dev, fn, 0x00);
            if ((id & 0xffff) == 0xffff) {
                if (fn == 0) break;
                continue;
            }
            u32 class = read(bus, dev, fn, 0x08) >> 8;
            u32 header = (read(bus, dev, fn, 0x0c) >> 16) & 0xff;
            puts(name);
            putc(' ');
            put_bdf(bus, dev, fn);
            putc(' ');
            puthex(id & 0xffff, 4);
            putc(':');
            puthex(id >> 16, 4);
            puts(" class ");
            puthex(class, 6);
            puts(" hdr ");
            puthex(header, 2);
            putc('\n');
            found++;
            if (fn == 0 && !(header & 0x80)) break;
        }
    }
    return found;
}

/* Compares the ID, class and header dwords of all 256 functions of a bus between the two mechanisms. */
static void compare_bus(int bus, int found_cf8, int found_ecam)
{
    static const int offsets[] = { 0x00, 0x08, 0x0c };
    int differences = 0;
    for (int dev = 0; dev < 32; dev++) {
        for (int fn = 0; fn < 8; fn++) {
            for (int i = 0; i < 3; i++) {
                u32 a = cf8_read(bus, dev, fn, offsets[i]), b = ecam_read(bus, dev, fn, offsets[i]);
                if (a == b) continue;
                puts("DISAGREE ");
                put_bdf(bus, dev, fn);
                puts(" off ");
                puthex((u64)offsets[i], 2);
                puts(" cf8 ");
                puthex(a, 8);
                puts(" ecam ");
                puthex(b, 8);
                putc('\n');
                differences++;
            }
        }
    }
    if (found_cf8 != found_ecam) {
        puts("DISAGREE bus ");
        puthex((u64)bus, 2);
        puts(" counts\n");
        differences++;
    }
    if (differences) return;
    puts("AGREE bus ");
    puthex((u64)bus, 2);
    puts(" functions ");
    puthex((u64)found_cf8, 2);
    putc('\n');
}

static void enumerate(int bus)
{
    int a = list_bus("CF8", cf8_read, bus);
    int b = list_bus("ECAM", ecam_read, bus);
    compare_bus(bus, a, b);
}

/* Finds the first function 0 on bus 0 whose vendor is <vendor> (or, if vendor is 0, whose class is <class>). */
static int find_device(u32 vendor, u32 class)
{
    for (int dev = 0; dev < 32; dev++) {
        u32 id = cf8_read(0, dev, 0, 0x00);
        if ((id & 0xffff) == 0xffff) continue;
        if (vendor ? (id & 0xffff) == vendor : cf8_read(0, dev, 0, 0x08) >> 16 == class) return dev;
    }
    return -1;
}

/* Sizes BAR 0 of 00:dev.0 with memory and I/O decoding off, then restores the BAR and the command register. */
static void size_bar(int dev)
{
    u32 command = cf8_read(0, dev, 0, 0x04);
    cf8_write(0, dev, 0, 0x04, command & 0xfffc);      /* low word only: the status word is write-1-to-clear */
    u32 low = cf8_read(0, dev, 0, 0x10), high = cf8_read(0, dev, 0, 0x14);
    int io = low & 1, mem64 = !io && (low & 6) == 4;
    cf8_write(0, dev, 0, 0x10, 0xffffffff);
    u64 mask = cf8_read(0, dev, 0, 0x10);
    if (mem64) {
        cf8_write(0, dev, 0, 0x14, 0xffffffff);
        mask |= (u64)cf8_read(0, dev, 0, 0x14) << 32;
    } else {
        mask |= 0xffffffff00000000UL;
    }
    mask &= io ? ~3UL : ~0xfUL;
    cf8_write(0, dev, 0, 0x10, low);
    if (mem64) cf8_write(0, dev, 0, 0x14, high);
    cf8_write(0, dev, 0, 0x04, command & 0xffff);
    int restored = ecam_read(0, dev, 0, 0x10) == low && (!mem64 || ecam_read(0, dev, 0, 0x14) == high)
        && (ecam_read(0, dev, 0, 0x04) & 0xffff) == (command & 0xffff);
    puts("BAR ");
    put_bdf(0, dev, 0);
    puts(" 0 kind ");
    puts(io ? "io" : mem64 ? "mem64" : "mem32");
    puts(" size ");
    puthex(mask ? ~mask + 1 : 0, 16);
    puts(restored ? " restored yes\n" : " restored no\n");
}

/* Clears a bridge's bus numbers (bus 1 must go silent), then programs 0/1/1 and enumerates bus 1. */
static void follow_bridge(int dev)
{
    u32 buses = cf8_read(0, dev, 0, 0x18);
    cf8_write(0, dev, 0, 0x18, buses & 0xff000000);
    puts("BRIDGE ");
    put_bdf(0, dev, 0);
    int silent = (cf8_read(1, 0, 0, 0x00) & 0xffff) == 0xffff && (ecam_read(1, 0, 0, 0x00) & 0xffff) == 0xffff;
    puts(silent ? " cleared bus01 empty\n" : " cleared bus01 answers\n");
    cf8_write(0, dev, 0, 0x18, (buses & 0xff000000) | 0x010100);
    u32 now = ecam_read(0, dev, 0, 0x18);
    puts("BRIDGE ");
    put_bdf(0, dev, 0);
    puts(" buses ");
    puthex(now & 0xff, 2);
    putc(' ');
    puthex((now >> 8) & 0xff, 2);
    putc(' ');
    puthex((now >> 16) & 0xff, 2);
    putc('\n');
    enumerate(1);
}

void probe_main(void)
{
    enumerate(0);
    int virtio = find_device(VIRTIO_VENDOR, 0);
    if (virtio >= 0) size_bar(virtio);
    else puts("BAR none\n");
    int bridge = find_device(0, CLASS_BRIDGE);
    if (bridge >= 0) follow_bridge(bridge);
    else puts("BRIDGE none\n");
    puts("PCI-PROBE-DONE\n");
    outb(I8042_CMD, 0xfe);
}

/* The boot stack has only the 4 KiB above the zero page: move it. */
PAYLOAD_ENTRY(probe_main, STACK_TOP);
