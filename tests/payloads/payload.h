/*
 * Shared definitions for the payload guests.
 *
 * Every payload is flat 64-bit code entered at its first byte in long mode
 * (CPL 0, identity-mapped first 4 GiB, RSP = 0x8FF0, interrupts off).
 * The code must be position independent: the same bytes run at 0x1000000
 * (vmlinux.bin) and at 0x100200 (bzImage 64-bit entry). Everything lives in
 * .text and is reached RIP-relative, so the object has no relocations
 * (build-payloads.sh checks that).
 */
#define UART_THR        0x3f8           /* 16550 transmit holding register */
#define I8042_CMD       0x64            /* i8042 command port; 0xFE = pulse reset line */
#define CMOS_INDEX      0x70
#define CMOS_DATA       0x71
#define BOOT_TIMER      0xC0000000      /* Firecracker-style boot timer: 1-byte write of 123 */
#define BOOT_TIMER_MAGIC 123
#define LAPIC_BASE      0xFEE00000
#define UNMAPPED_MMIO   0xD0000000

        .text
        .code64

/* The entry point: must be the first thing in the file. */
#define ENTRY   .globl _start; _start: cld
