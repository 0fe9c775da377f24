/* counter: print "tick NNNNNNNN" lines forever, a busy-wait apart. For the QMP lifecycle tests: output stops
 * while the VM is paused and resumes after cont; only the VMM ends it (quit, system_reset, a signal). */
#include "payload.h"

ENTRY
        call    boot_timer
        xor     %ebx, %ebx
1:      lea     tick(%rip), %rsi
        call    puts
        mov     %ebx, %eax
        call    puthex32
        mov     $'\n', %al
        call    putc
        inc     %ebx
        mov     $20000000, %ecx         /* a few ms on hardware, more under nested emulation */
2:      dec     %ecx
        jnz     2b
        jmp     1b

tick:   .asciz  "tick "

#include "lib.inc"
