/* mmio-probe: read 4 bytes from an address no device claims. A VMM must return
 * all ones; print "MMIO ff" if so, else "MMIO <value in hex>". Then reset. */
#include "payload.h"

ENTRY
        mov     $UNMAPPED_MMIO, %eax
        mov     (%rax), %ebx
        cmp     $0xffffffff, %ebx
        jne     1f
        lea     ok(%rip), %rsi
        call    puts
        call    reset
1:      lea     prefix(%rip), %rsi
        call    puts
        mov     %ebx, %eax
        call    puthex32
        mov     $'\n', %al
        call    putc
        call    reset

ok:     .asciz  "MMIO ff\n"
prefix: .asciz  "MMIO "

#include "lib.inc"
