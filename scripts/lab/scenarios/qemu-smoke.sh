# Lab scenarios that boot the inner guest under QEMU microvm: they check the lab itself (markers, exit codes,
# timings, input typed over the serial console, the timeout) with a known-good VMM. Run with:
#   scripts/lab/run.sh --with-qemu --scenarios scripts/lab/scenarios/qemu-smoke.sh --log <file>
# shellcheck shell=sh

# qemu_microvm <vCPUs> <lab.action> [more kernel parameters]: the inner guest under QEMU microvm with nested
# KVM, 256 MiB.
qemu_microvm() {
    "$QEMU" -L "$QEMU_FW" -M microvm -enable-kvm -cpu host -m 256 -smp "$1" \
        -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 reboot=k panic=1 lab.action=$2 ${3:-}" \
        -nographic -no-reboot -nodefaults -serial stdio
}

scenario qemu-poweroff 240 qemu_microvm 1 poweroff
# microvm has no i8042, so reboot=k spins ~45 s in the lab before the kernel gives up; a triple fault is quick.
scenario qemu-reboot 240 qemu_microvm 2 reboot reboot=t
scenario_input qemu-shell 300 'uname -a\npoweroff -f' qemu_microvm 1 shell
scenario lab-timeout 2 'echo waiting; sleep 60'
