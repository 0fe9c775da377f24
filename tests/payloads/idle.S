/* idle: signal the boot timer, then halt with interrupts off forever.
 * Used for memory measurements: the VMM stays alive with an idle guest. */
#include "payload.h"

ENTRY
        call    boot_timer
        jmp     halt_forever

#include "lib.inc"
