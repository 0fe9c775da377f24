/* hello: print a greeting, signal the boot timer, reset. */
#include "payload.h"

ENTRY
        lea     msg(%rip), %rsi
        call    puts
        call    boot_timer
        call    reset

msg:    .asciz  "Hello from payload\n"

#include "lib.inc"
