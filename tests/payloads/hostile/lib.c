/* hostile: freestanding basics (the compiler may call memset and memcpy), UART output, MMIO accesses of any
 * width, randomness, and what the VMM tells the guest at boot. */
#include "hostile.h"

/* ---- Freestanding basics ---- */
void *memset(void *d, int c, unsigned long n)
{
    u8 *p = d;
    while (n--) *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--) *p++ = *q++;
    return d;
}

void uart_putc(char c)
{
    outb(UART, (u8)c);
}

void uart_puts(const char *s)
{
    while (*s) uart_putc(*s++);
}

void putu(u64 v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    uart_puts(buf + i);
}

void putkv(const char *key, u64 v)
{
    uart_puts(key);
    putu(v);
}

void mmio_write(u64 a, u64 v, int width)
{
    if (width == 1) w8(a, (u8)v);
    else if (width == 2) w16(a, (u16)v);
    else if (width == 4) w32(a, (u32)v);
    else w64(a, v);
}

u64 mmio_read(u64 a, int width)
{
    if (width == 1) return *PHYS(u8, a);
    if (width == 2) return *PHYS(u16u, a);
    if (width == 4) return *PHYS(u32u, a);
    return *PHYS(u64u, a);
}

/* ---- Randomness ---- */
u64 rnd(struct fuzz *f)
{
    u64 x = f->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    f->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

u32 below(struct fuzz *f, u32 n)
{
    return n ? (u32)((rnd(f) >> 16) % n) : 0;
}

/* True with probability n/d. */
int chance(struct fuzz *f, u32 n, u32 d)
{
    return below(f, d) < n;
}

u32 pick_width(struct fuzz *f)
{
    u32 r = below(f, 100);
    return r < 15 ? 1 : r < 30 ? 2 : r < 85 ? 4 : 8;
}

/* A power of two up to max (max itself half of the time). */
u16 pow2_size(struct fuzz *f, u16 max)
{
    u16 size = 1;
    if (chance(f, 1, 2)) {
        while ((u32)size * 2 <= max) size *= 2;
        return size;
    }
    u32 shift = below(f, 11);
    while (shift-- && (u32)size * 2 <= max) size *= 2;
    return size;
}

/* ---- Boot information ---- */
static u64 parse_number(const char *s)
{
    u64 v = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (s += 2;; s++) {
            char c = *s;
            if (c >= '0' && c <= '9') v = v * 16 + (u64)(c - '0');
            else if (c >= 'a' && c <= 'f') v = v * 16 + (u64)(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v = v * 16 + (u64)(c - 'A' + 10);
            else return v;
        }
    }
    for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + (u64)(*s - '0');
    return v;
}

/* The value of "<key>=" at the start of a word of the command line, or fallback. */
u64 command_line_value(const char *key, u64 fallback)
{
    const char *line = (const char *)(uintptr_t)COMMAND_LINE;
    for (const char *p = line; *p; p++) {
        if (p != line && p[-1] != ' ') continue;
        const char *k = key, *q = p;
        while (*k && *q == *k) k++, q++;
        if (!*k) return parse_number(q);
    }
    return fallback;
}

/* The e820 map of boot_params: the ends of RAM overall and below 4 GiB. */
void read_e820(struct fuzz *f)
{
    u8 entries = *PHYS(u8, ZERO_PAGE + 0x1e8);
    for (u32 i = 0; i < entries && i < 128; i++) {
        u64 e = ZERO_PAGE + 0x2d0 + 20UL * i;
        u64 addr = *PHYS(u64u, e), size = *PHYS(u64u, e + 8);
        if (*PHYS(u32u, e + 16) != 1) continue;
        u64 end = addr + size;
        if (end > f->ram_end) f->ram_end = end;
        if (addr < 0x100000000ULL && end > f->ram_low_end) f->ram_low_end = end < 0x100000000ULL ? end : 0x100000000ULL;
    }
}

