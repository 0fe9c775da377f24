/* smp: the BSP starts the AP with INIT + STARTUP IPIs. The AP runs a 16-bit
 * real-mode trampoline (copied to 0x10000, SIPI vector 0x10) that prints
 * "AP up" and sets a flag. The BSP polls the flag (bounded by the TSC) and
 * prints "SMP 2 cpus", or "SMP timeout" if the AP never showed up. Then reset.
 * The AP is addressed by APIC ID 1 (KVM's default APIC ID is the vCPU index). */
#include "payload.h"

#define TRAMPOLINE      0x10000                 /* below 1 MiB, unused by the VMM */
#define SIPI_VECTOR     (TRAMPOLINE >> 12)
#define AP_APIC_ID      1
#define APIC_SVR        0x0f0
#define APIC_ICR_LO     0x300
#define APIC_ICR_HI     0x310
#define ICR_INIT        0x00004500              /* delivery INIT, level assert */
#define ICR_STARTUP     0x00004600              /* delivery STARTUP, level assert */
#define ICR_BUSY        (1 << 12)
#define WAIT_TSC_CYCLES 0x200000000             /* ~2-4 s on current CPUs */
#define FLAG_ADDR       (TRAMPOLINE + (ap_flag - ap_start))

ENTRY
        /* copy the trampoline */
        lea     ap_start(%rip), %rsi
        mov     $TRAMPOLINE, %edi
        mov     $(ap_end - ap_start), %ecx
        rep movsb

        mov     $LAPIC_BASE, %ebx
        movl    $0x1ff, APIC_SVR(%rbx)          /* software-enable the LAPIC, spurious vector 0xff */

        mov     $ICR_INIT, %eax
        call    send_ipi
        mov     $(ICR_STARTUP | SIPI_VECTOR), %eax
        call    send_ipi
        mov     $(ICR_STARTUP | SIPI_VECTOR), %eax
        call    send_ipi                        /* the second SIPI is ignored by a started AP */

        rdtsc
        shl     $32, %rdx
        or      %rax, %rdx
        movabs  $WAIT_TSC_CYCLES, %r8
        add     %rdx, %r8                       /* deadline */
        mov     $FLAG_ADDR, %edi
1:      cmpb    $0, (%rdi)
        jne     2f
        pause
        rdtsc
        shl     $32, %rdx
        or      %rax, %rdx
        cmp     %r8, %rdx
        jb      1b
        lea     timeout(%rip), %rsi
        call    puts
        call    reset
2:      lea     done(%rip), %rsi
        call    puts
        call    reset

/* send_ipi: ICR low value in %eax, to APIC ID AP_APIC_ID; %rbx = LAPIC base. */
send_ipi:
        movl    $(AP_APIC_ID << 24), APIC_ICR_HI(%rbx)
        movl    %eax, APIC_ICR_LO(%rbx)
        mov     $100000, %ecx                   /* bounded wait for delivery */
1:      testl   $ICR_BUSY, APIC_ICR_LO(%rbx)
        jz      2f
        pause
        dec     %ecx
        jnz     1b
2:      ret

done:    .asciz "SMP 2 cpus\n"
timeout: .asciz "SMP timeout: the AP did not start\n"

/* The AP trampoline: entered in real mode at CS = SIPI_VECTOR << 8, IP = 0. */
        .code16
ap_start:
        cli
        mov     %cs, %ax
        mov     %ax, %ds
        mov     $(ap_msg - ap_start), %si
        mov     $UART_THR, %dx
1:      lodsb
        test    %al, %al
        jz      2f
        out     %al, %dx
        jmp     1b
2:      movb    $1, (ap_flag - ap_start)
3:      hlt
        jmp     3b
ap_msg: .asciz  "AP up\n"
ap_flag: .byte  0
ap_end:
        .code64

#include "lib.inc"
