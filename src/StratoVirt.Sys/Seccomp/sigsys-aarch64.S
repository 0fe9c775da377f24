/*
 * The SIGSYS handler for seccomp's SECCOMP_RET_TRAP on aarch64: the same job as sigsys-x86_64.S (read its
 * comment), as position-independent A64 code. src/StratoVirt.Sys/Seccomp/SigSysHandler.cs holds the same bytes;
 * a unit test assembles this file and compares.
 *
 * Entry (SA_SIGINFO): x0 = signal number, x1 = siginfo_t *, x2 = ucontext. si_syscall is at byte 24. The kernel
 * keeps every register but x0 across svc. It never returns. The parameter block follows the code, laid out as
 * in the x86-64 handler.
 */
        .text
        .globl  sigsys_handler

        /* copy src, len: copies len bytes from src to the cursor x10 (advancing both; uses w13) */
        .macro  copy src, len
1:      cbz     \len, 2f
        ldrb    w13, [\src], #1
        strb    w13, [x10], #1
        sub     \len, \len, #1
        b       1b
2:
        .endm

sigsys_handler:
        sub     sp, sp, #288            /* the line at [sp], digits built backwards ending at sp + 272 */
        ldr     w9, [x1, #24]           /* the blocked call's number; zero-extends into x9 */
        mov     x10, sp                 /* write cursor */
        adr     x11, prefix
        mov     x12, #(suffix - prefix)
        copy    x11, x12
        adr     x14, params
        ldr     w15, [x14, #4]          /* entries in the table */
        cmp     w9, w15
        b.hs    unknown
        add     x16, x14, #8
        add     x16, x16, x9, lsl #2    /* this call's entry */
        ldrh    w11, [x16]              /* name offset */
        ldrh    w12, [x16, #2]          /* name length */
        cbz     w12, unknown
        add     x17, x14, #8
        add     x17, x17, x15, lsl #2   /* the names start after the table */
        add     x11, x17, x11
        copy    x11, x12
        b       number
unknown:
        mov     w13, #'?'
        strb    w13, [x10], #1
number:
        mov     w13, #' '
        strb    w13, [x10], #1
        mov     w13, #'('
        strb    w13, [x10], #1
        add     x11, sp, #272
        mov     w12, w9
        mov     w16, #10
digit:
        udiv    w17, w12, w16
        msub    w13, w17, w16, w12      /* the lowest digit */
        add     w13, w13, #'0'
        strb    w13, [x11, #-1]!
        mov     w12, w17
        cbnz    w12, digit
        add     x12, sp, #272
        sub     x12, x12, x11
        copy    x11, x12
        adr     x11, suffix
        mov     x12, #(text_end - suffix)
        copy    x11, x12
        mov     x12, sp
        sub     x20, x10, x12           /* the line's length */
        mov     x8, #64                 /* write(2, line, length) */
        mov     x0, #2
        mov     x1, sp
        mov     x2, x20
        svc     #0
        ldr     w0, [x14]               /* the log fd */
        cmp     w0, #2
        b.le    leave
        mov     x8, #64                 /* write(log fd, line, length) */
        mov     x1, sp
        mov     x2, x20
        svc     #0
leave:
        mov     x8, #94                 /* exit_group(128 + SIGSYS) */
        mov     x0, #159
        svc     #0
        brk     #0
prefix:
        .ascii  "stratovirt: seccomp blocked system call "
suffix:
        .ascii  "); stopping the VM\n"
text_end:
        .balign 8, 0
params:
