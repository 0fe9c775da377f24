/* fault: load an empty IDT and raise #UD. #UD cannot be delivered (vector past
 * the IDT limit) -> #GP -> #DF -> triple fault. The VMM must exit non-zero. */
#include "payload.h"

ENTRY
        lea     msg(%rip), %rsi
        call    puts
        lea     idtr(%rip), %rax
        lidt    (%rax)
        ud2
        /* not reached on a correct VMM */
        lea     alive(%rip), %rsi
        call    puts
        jmp     halt_forever

idtr:   .word   0                       /* limit 0: no vector is deliverable */
        .quad   0
msg:    .asciz  "Triple fault next\n"
alive:  .asciz  "Still alive after ud2\n"

#include "lib.inc"
