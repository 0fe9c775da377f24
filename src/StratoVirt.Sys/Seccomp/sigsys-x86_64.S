/*
 * The SIGSYS handler for seccomp's SECCOMP_RET_TRAP, as position-independent x86-64 code that the VMM copies
 * into an executable page (src/StratoVirt.Sys/Seccomp/SigSysHandler.cs holds the same bytes; a unit test
 * assembles this file and compares). It must not touch the .NET runtime: the blocked call may come from the
 * runtime itself, in the middle of a garbage collection, on any thread. So it formats
 *     stratovirt: seccomp blocked system call <name> (<number>); stopping the VM
 * on its own stack and makes only write and exit_group, which every thread's allow-list has.
 *
 * Entry (SA_SIGINFO): rdi = signal number, rsi = siginfo_t *, rdx = ucontext. si_syscall is at byte 24.
 * It never returns. Right after the code comes the parameter block the VMM fills in:
 *     +0  int32   log fd (a second copy of the line goes there when it is above 2)
 *     +4  uint32  entries in the name table
 *     +8  { uint16 offset, uint16 length } per system call number, offsets into the names that follow the table
 */
        .text
        .globl  sigsys_handler
sigsys_handler:
        sub     $280, %rsp              /* the line at 0(%rsp), digits built backwards ending at 272(%rsp) */
        mov     24(%rsi), %r8d          /* the blocked call's number; zero-extends into r8 */
        mov     %rsp, %rdi              /* write cursor */
        lea     prefix(%rip), %rsi
        mov     $(suffix - prefix), %ecx
        rep movsb
        lea     params(%rip), %r9
        mov     4(%r9), %eax            /* entries in the table */
        cmp     %eax, %r8d
        jae     unknown
        movzwl  8(%r9,%r8,4), %esi      /* name offset */
        movzwl  10(%r9,%r8,4), %ecx     /* name length */
        test    %ecx, %ecx
        jz      unknown
        lea     8(%r9,%rax,4), %rax     /* the names start after the table */
        add     %rax, %rsi
        rep movsb
        jmp     number
unknown:
        movb    $'?', (%rdi)
        inc     %rdi
number:
        movw    $0x2820, (%rdi)         /* " (" */
        add     $2, %rdi
        lea     272(%rsp), %r10
        mov     %r8d, %eax
        mov     $10, %ecx
digit:
        xor     %edx, %edx
        div     %ecx
        add     $'0', %dl
        dec     %r10
        mov     %dl, (%r10)
        test    %eax, %eax
        jnz     digit
        lea     272(%rsp), %rcx
        sub     %r10, %rcx
        mov     %r10, %rsi
        rep movsb
        lea     suffix(%rip), %rsi
        mov     $(params_end_text - suffix), %ecx
        rep movsb
        mov     %rdi, %r12
        sub     %rsp, %r12              /* the line's length; syscall keeps r12 */
        mov     $1, %eax                /* write(2, line, length) */
        mov     $2, %edi
        mov     %rsp, %rsi
        mov     %r12, %rdx
        syscall
        mov     (%r9), %edi             /* the log fd */
        cmp     $2, %edi
        jle     leave
        mov     $1, %eax                /* write(log fd, line, length) */
        mov     %rsp, %rsi
        mov     %r12, %rdx
        syscall
leave:
        mov     $231, %eax              /* exit_group(128 + SIGSYS) */
        mov     $159, %edi
        syscall
        ud2
prefix:
        .ascii  "stratovirt: seccomp blocked system call "
suffix:
        .ascii  "); stopping the VM\n"
params_end_text:
        .balign 8, 0
params:
