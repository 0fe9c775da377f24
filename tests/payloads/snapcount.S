/* snapcount: count in a register (%ebx) and in memory (the word at `count`), printing both as
 * "count RRRRRRRR MMMMMMMM" lines about 10 ms apart, and "MISMATCH" on a line where they differ. For the
 * snapshot tests: a guest restored from a snapshot continues both counts where they stood, with no reboot. */
#include "payload.h"

ENTRY
        call    boot_timer
        xor     %ebx, %ebx
        movl    $0, count(%rip)
1:      lea     label(%rip), %rsi
        call    puts
        mov     %ebx, %eax
        call    puthex32
        mov     $' ', %al
        call    putc
        mov     count(%rip), %eax
        call    puthex32
        cmp     %ebx, %eax
        je      3f
        lea     mismatch(%rip), %rsi
        call    puts
3:      mov     $'\n', %al
        call    putc
        inc     %ebx
        incl    count(%rip)
        call    wait_tick
        jmp     1b

label:  .asciz  "count "
mismatch: .asciz " MISMATCH"
        .balign 4
count:  .long   0

#include "lib.inc"
