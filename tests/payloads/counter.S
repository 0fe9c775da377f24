/* counter: print "tick NNNNNNNN" lines forever, about 10 ms apart. For the QMP lifecycle tests: output stops
 * while the VM is paused and resumes after cont; only the VMM ends it (quit, system_reset, a signal).
 * The pause is measured with the TSC, not counted in instructions: on a PVM host a guest's loop runs hundreds of
 * times slower than on hardware, and a fixed count there took minutes per tick. */
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
        call    wait_tick
        jmp     1b

tick:   .asciz  "tick "

#include "lib.inc"
