/* The entry of a C payload (the .c files of a folder tests/payloads/NAME): build-payloads.sh links the section
 * .text.entry first, and the VMM enters it in long mode with interrupts off, on a boot stack of only the 4 KiB
 * above the zero page. PAYLOAD_ENTRY(main, stack_top) moves the stack to stack_top, calls main and halts if it
 * returns. */
#ifndef PAYLOAD_ENTRY_H
#define PAYLOAD_ENTRY_H

#define PAYLOAD_STRING(x) #x
#define PAYLOAD_VALUE(x) PAYLOAD_STRING(x)

#define PAYLOAD_ENTRY(main, stack_top) \
    __asm__( \
        ".section .text.entry, \"ax\"\n" \
        ".globl _start\n" \
        "_start:\n" \
        "    cld\n" \
        "    mov $" PAYLOAD_VALUE(stack_top) ", %esp\n" \
        "    call " #main "\n" \
        "1:  cli\n" \
        "    hlt\n" \
        "    jmp 1b\n" \
        ".previous\n")

#endif
