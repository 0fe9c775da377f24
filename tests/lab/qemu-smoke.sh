# Lab scenarios that boot the inner guest under QEMU microvm: they check the lab itself (markers, exit codes,
# timings, input typed over the serial console) with a known-good VMM. Run with:
#   scripts/lab/run.sh --with-qemu --scenarios tests/lab/qemu-smoke.sh --log <file>
# shellcheck shell=sh

# qemu_microvm <vCPUs> <lab.action>: the inner guest under QEMU microvm with KVM (nested), 256 MiB.
qemu_microvm() {
    "$QEMU" -L "$QEMU_FW" -M microvm -enable-kvm -cpu host -m 256 -smp "$1" \
        -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 reboot=k panic=1 lab.action=$2" \
        -nographic -no-reboot -nodefaults -serial stdio
}

scenario qemu-poweroff 240 qemu_microvm 1 poweroff
scenario qemu-reboot 240 qemu_microvm 2 reboot
scenario_input qemu-shell 300 'uname -a\npoweroff -f' qemu_microvm 1 shell
