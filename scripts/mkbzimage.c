/*
 * mkbzimage: wrap flat 64-bit code into a minimal bzImage.
 *
 *   mkbzimage <code.bin> <out.bzImage> [name]
 *
 * Layout (Linux x86 boot protocol 2.15):
 *   0x000-0x1ff  boot sector: zeros, setup header fields from 0x1f1, 0xAA55 at 0x1fe
 *   0x200-0x3ff  one setup sector: the rest of the setup header and a version string
 *   0x400-       protected-mode part, loaded at code32_start (0x100000):
 *                0x200 bytes for the (unused) 32-bit entry: cli; hlt loop,
 *                then the 64-bit code, entered at 0x100000 + 0x200.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETUP_SECTS     1
#define SETUP_SIZE      ((SETUP_SECTS + 1) * 512)
#define ENTRY64_OFFSET  0x200
#define VERSION_OFFSET  0x300   /* version string inside the setup sector */

static void put8(uint8_t *b, size_t off, uint8_t v) { b[off] = v; }
static void put16(uint8_t *b, size_t off, uint16_t v) { for (int i = 0; i < 2; i++) b[off + i] = (uint8_t)(v >> (8 * i)); }
static void put32(uint8_t *b, size_t off, uint32_t v) { for (int i = 0; i < 4; i++) b[off + i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *b, size_t off, uint64_t v) { for (int i = 0; i < 8; i++) b[off + i] = (uint8_t)(v >> (8 * i)); }

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s <code.bin> <out.bzImage> [name]\n", argv[0]);
        return 2;
    }
    const char *name = argc == 4 ? argv[3] : "payload";

    FILE *in = fopen(argv[1], "rb");
    if (!in) { perror(argv[1]); return 1; }
    if (fseek(in, 0, SEEK_END) != 0) { perror("fseek"); return 1; }
    long code_size = ftell(in);
    rewind(in);
    if (code_size <= 0) { fprintf(stderr, "%s: empty\n", argv[1]); return 1; }

    size_t pm_size = ENTRY64_OFFSET + (size_t)code_size;
    size_t total = SETUP_SIZE + pm_size;
    uint8_t *img = calloc(1, total);
    if (!img) { perror("calloc"); return 1; }
    if (fread(img + SETUP_SIZE + ENTRY64_OFFSET, 1, (size_t)code_size, in) != (size_t)code_size) {
        perror("fread");
        return 1;
    }
    fclose(in);

    /* 32-bit entry (never used by a 64-bit loader): cli; 1: hlt; jmp 1b */
    uint8_t *pm = img + SETUP_SIZE;
    pm[0] = 0xfa; pm[1] = 0xf4; pm[2] = 0xeb; pm[3] = 0xfd;

    put8(img, 0x1f1, SETUP_SECTS);          /* setup_sects */
    put16(img, 0x1f2, 0);                   /* root_flags */
    put32(img, 0x1f4, (uint32_t)((pm_size + 15) / 16)); /* syssize, 16-byte units */
    put16(img, 0x1f8, 0);                   /* ram_size (obsolete) */
    put16(img, 0x1fa, 0xffff);              /* vid_mode: normal */
    put16(img, 0x1fc, 0);                   /* root_dev */
    put16(img, 0x1fe, 0xaa55);              /* boot_flag */
    put8(img, 0x200, 0xeb);                 /* jump over the header (real-mode entry, unused) */
    put8(img, 0x201, 0x6a);                 /* to 0x26c */
    memcpy(img + 0x202, "HdrS", 4);         /* header magic */
    put16(img, 0x206, 0x020f);              /* boot protocol version 2.15 */
    put32(img, 0x208, 0);                   /* realmode_swtch */
    put16(img, 0x20c, 0x1000);              /* start_sys_seg (obsolete) */
    put16(img, 0x20e, VERSION_OFFSET - 0x200); /* kernel_version: offset - 0x200 */
    put8(img, 0x210, 0);                    /* type_of_loader: the loader fills it */
    put8(img, 0x211, 0x01);                 /* loadflags: LOADED_HIGH */
    put16(img, 0x212, 0x8000);              /* setup_move_size */
    put32(img, 0x214, 0x100000);            /* code32_start */
    put32(img, 0x218, 0);                   /* ramdisk_image */
    put32(img, 0x21c, 0);                   /* ramdisk_size */
    put32(img, 0x220, 0);                   /* bootsect_kludge */
    put16(img, 0x224, 0);                   /* heap_end_ptr */
    put32(img, 0x228, 0);                   /* cmd_line_ptr */
    put32(img, 0x22c, 0x7fffffff);          /* initrd_addr_max */
    put32(img, 0x230, 0x200000);            /* kernel_alignment: 2 MiB */
    put8(img, 0x234, 1);                    /* relocatable_kernel */
    put8(img, 0x235, 21);                   /* min_alignment: log2(2 MiB) */
    put16(img, 0x236, 0x0003);              /* xloadflags: XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
    put32(img, 0x238, 2047);                /* cmdline_size */
    put32(img, 0x23c, 0);                   /* hardware_subarch: PC */
    put64(img, 0x240, 0);                   /* hardware_subarch_data */
    put32(img, 0x248, 0);                   /* payload_offset: not compressed */
    put32(img, 0x24c, 0);                   /* payload_length */
    put64(img, 0x250, 0);                   /* setup_data */
    put64(img, 0x258, 0x1000000);           /* pref_address */
    uint32_t init_size = (uint32_t)((pm_size + 0xfffff) & ~(size_t)0xfffff); /* round up to 1 MiB */
    if (init_size < 0x400000)
        init_size = 0x400000;
    put32(img, 0x260, init_size);           /* init_size: memory needed from the load address */
    put32(img, 0x264, 0);                   /* handover_offset: no EFI handover */
    put32(img, 0x268, 0);                   /* kernel_info_offset: none */
    /* real-mode entry at 0x26c (never used here): cli; hlt; jmp $-1 */
    put8(img, 0x26c, 0xfa); put8(img, 0x26d, 0xf4); put8(img, 0x26e, 0xeb); put8(img, 0x26f, 0xfd);
    snprintf((char *)img + VERSION_OFFSET, 64, "payload-%s", name);

    FILE *out = fopen(argv[2], "wb");
    if (!out) { perror(argv[2]); return 1; }
    if (fwrite(img, 1, total, out) != total || fclose(out) != 0) { perror(argv[2]); return 1; }
    free(img);
    return 0;
}
