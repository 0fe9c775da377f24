# Scenarios of bench/lab-boot.sh (which puts BENCH_REPEAT, BENCH_OURS_TIMEOUT, BENCH_MACHINE, BENCH_CONSOLE,
# BENCH_QEMU_MACHINE and the smaps_summary function of bench/lib.sh in front of this file): the same kernel and inner
# initramfs, 256 MiB, booted with 1 and 2 vCPUs under our VMM (-machine $BENCH_MACHINE) and under QEMU (-M
# $BENCH_QEMU_MACHINE: the same type on x86_64, virt on arm64), alternating, BENCH_REPEAT times.
# Scenario names: <ours|qemu>-smp<N>-r<repeat> (lab.action=poweroff). Then mem-ours and mem-qemu: one idle VM each
# (1 vCPU, lab.action=shell, its console open and silent), whose memory overhead is printed as
# "BENCH-MEM <ours|qemu> <overhead> <big-other> <guest> <total>" (kB, smaps_summary's rule), or "BENCH-MEM <ours|qemu>
# fail <why>".
# shellcheck shell=sh disable=SC2154

bench_cmdline="console=${BENCH_CONSOLE:-ttyS0} reboot=k panic=1"

# ours|qemu <vCPUs> [lab.action, default poweroff]: exec'd, so that the VMM keeps the caller's pid.
# With -D and the info level our VMM logs "Guest-boot-time = <us> us" when the guest writes the boot timer.
ours() {
    exec env STRATOVIRT_LOG_LEVEL=info "$VMM" -machine "$BENCH_MACHINE" -kernel "$KERNEL" \
        -append "$bench_cmdline lab.action=${2:-poweroff}" -initrd "$INITRD" -m 256 -smp "$1" -serial stdio -D
}

# -cpu host: the guest sees the CPUID KVM supports, as under our VMM. QEMU's q35 boots the kernel through SeaBIOS
# and its linuxboot_dma option ROM (both in $QEMU_FW, which the Arm lab does not set: virt loads the Image itself).
qemu() {
    exec "$QEMU" ${QEMU_FW:+-L "$QEMU_FW"} -M "${BENCH_QEMU_MACHINE:-$BENCH_MACHINE}" -enable-kvm -cpu host -m 256 \
        -smp "$1" -kernel "$KERNEL" -initrd "$INITRD" -append "$bench_cmdline lab.action=${2:-poweroff}" -nographic -no-reboot -nodefaults \
        -serial stdio
}

# idle_mem <ours|qemu>: starts that VMM's idle VM, waits for the guest's shell prompt (GUEST-SHELL), 3 s more, then
# prints its BENCH-MEM line and kills it. The VM's console goes to a file; its stdin is a FIFO held open here.
idle_mem() {
    idle=$LAB_TMP/idle-$1
    rm -rf "$idle"
    mkdir -p "$idle"
    mkfifo "$idle/in"
    "$1" 1 shell <"$idle/in" >"$idle/out" 2>&1 &
    idle_pid=$!
    exec 3>"$idle/in"
    idle_polls=0
    until grep -q GUEST-SHELL "$idle/out"; do
        if ! kill -0 "$idle_pid" 2>/dev/null; then
            echo "BENCH-MEM $1 fail the VMM exited before GUEST-SHELL"
            tail -5 "$idle/out"
            return 1
        fi
        if [ "$idle_polls" -ge 900 ]; then
            echo "BENCH-MEM $1 fail no GUEST-SHELL in 180 s"
            tail -5 "$idle/out"
            kill -9 "$idle_pid"
            return 1
        fi
        sleep 0.2
        idle_polls=$((idle_polls + 1))
    done
    sleep 3
    echo "BENCH-MEM $1 $(smaps_summary "$idle_pid" 256)"
    grep -E 'GUEST-(CPUS|MEMTOTAL)' "$idle/out"
    kill -9 "$idle_pid"
    wait "$idle_pid" 2>/dev/null
    exec 3>&-
    return 0
}

lab_note "bench: machine $BENCH_MACHINE"
[ -z "${BENCH_QEMU_MACHINE:-}" ] || lab_note "bench: qemu machine $BENCH_QEMU_MACHINE"
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
[ "$ours_on" -eq 1 ] && scenario mem-ours 240 idle_mem ours
scenario mem-qemu 240 idle_mem qemu
