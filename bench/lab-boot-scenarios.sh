# Scenarios of bench/lab-boot.sh (which puts BENCH_REPEAT and BENCH_OURS_TIMEOUT in front of this file): the
# same kernel and inner initramfs, 256 MiB, lab.action=poweroff, booted with 1 and 2 vCPUs under our VMM and
# under QEMU microvm, alternating, BENCH_REPEAT times. Scenario names: <ours|qemu>-smp<N>-r<repeat>.
# shellcheck shell=sh disable=SC2154

bench_cmdline="console=ttyS0 reboot=k panic=1 lab.action=poweroff"

# With -D and the info level our VMM logs "Guest-boot-time = <us> us" when the guest writes the boot timer.
ours() {
    STRATOVIRT_LOG_LEVEL=info "$VMM" -machine microvm -kernel "$KERNEL" -append "$bench_cmdline" \
        -initrd "$INITRD" -m 256 -smp "$1" -serial stdio -D
}

# -cpu host: the guest sees the CPUID KVM supports, as under our VMM.
qemu() {
    "$QEMU" -L "$QEMU_FW" -M microvm -enable-kvm -cpu host -m 256 -smp "$1" -kernel "$KERNEL" -initrd "$INITRD" \
        -append "$bench_cmdline" -nographic -no-reboot -nodefaults -serial stdio
}

ours_on=1
if [ -z "$VMM" ]; then
    lab_note "bench: no VMM binary in this lab: QEMU only"
    ours_on=0
fi
rep=1
while [ "$rep" -le "$BENCH_REPEAT" ]; do
    for smp in 1 2; do
        if [ "$ours_on" -eq 1 ]; then
            name=ours-smp$smp-r$rep
            scenario "$name" "$BENCH_OURS_TIMEOUT" ours "$smp"
            # A VMM that does not end costs a timeout per run: stop using it. Failing fast costs nothing.
            if [ "$LAB_LAST_RC" -eq 124 ]; then
                lab_note "bench: our VMM was killed after ${BENCH_OURS_TIMEOUT}s ($name): QEMU only from here"
                ours_on=0
            elif ! lab_reached_init "$name"; then
                lab_note "bench: no GUEST-INIT line from the guest under our VMM ($name, rc=$LAB_LAST_RC)"
            fi
        fi
        scenario "qemu-smp$smp-r$rep" 240 qemu "$smp"
    done
    rep=$((rep + 1))
done
