/* rtc: read the CMOS clock and print "RTC CCYY-MM-DD HH:MM:SS", then reset.
 * Waits (bounded) for the update-in-progress flag to clear first. Values are
 * BCD unless status register B says binary (bit 2). A century register that
 * reads as 0 or as garbage is taken as 20. */
#include "payload.h"

#define RTC_SEC         0x00
#define RTC_MIN         0x02
#define RTC_HOUR        0x04
#define RTC_DAY         0x07
#define RTC_MONTH       0x08
#define RTC_YEAR        0x09
#define RTC_REG_A       0x0a
#define RTC_REG_B       0x0b
#define RTC_CENTURY     0x32

/* Read CMOS register \reg into \dst (a byte register other than %al). */
.macro  cmos reg, dst
        mov     $\reg, %al
        call    cmos_read
        mov     %al, \dst
.endm

ENTRY
        mov     $1000000, %ecx          /* bound on the UIP wait */
1:      mov     $RTC_REG_A, %al
        call    cmos_read
        test    $0x80, %al
        jz      2f
        dec     %ecx
        jnz     1b
2:
        cmos    RTC_REG_B, %r15b
        cmos    RTC_SEC, %r8b
        cmos    RTC_MIN, %r9b
        cmos    RTC_HOUR, %r10b
        cmos    RTC_DAY, %r11b
        cmos    RTC_MONTH, %r12b
        cmos    RTC_YEAR, %r13b
        cmos    RTC_CENTURY, %r14b

        lea     prefix(%rip), %rsi
        call    puts
        mov     %r14b, %al
        call    to_bin
        test    %al, %al
        jz      3f
        cmp     $99, %al
        jbe     4f
3:      mov     $20, %al
4:      call    putdec2
        mov     %r13b, %al
        call    to_bin
        call    putdec2
        mov     $'-', %al
        call    putc
        mov     %r12b, %al
        call    to_bin
        call    putdec2
        mov     $'-', %al
        call    putc
        mov     %r11b, %al
        call    to_bin
        call    putdec2
        mov     $' ', %al
        call    putc
        mov     %r10b, %al
        call    to_bin
        call    putdec2
        mov     $':', %al
        call    putc
        mov     %r9b, %al
        call    to_bin
        call    putdec2
        mov     $':', %al
        call    putc
        mov     %r8b, %al
        call    to_bin
        call    putdec2
        mov     $'\n', %al
        call    putc
        call    reset

/* cmos_read: %al = CMOS register index -> %al = its value. */
cmos_read:
        out     %al, $CMOS_INDEX
        in      $CMOS_DATA, %al
        ret

/* to_bin: convert %al from the RTC's encoding to binary (uses reg B in %r15b). */
to_bin:
        test    $0x04, %r15b            /* DM bit: 1 = binary */
        jnz     1f
        push    %rcx
        mov     %al, %cl
        and     $0x0f, %cl
        shr     $4, %al
        mov     $10, %ch
        mul     %ch                     /* ax = tens * 10 */
        add     %cl, %al
        pop     %rcx
1:      ret

prefix: .asciz  "RTC "

#include "lib.inc"
