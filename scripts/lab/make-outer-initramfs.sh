#!/usr/bin/env bash
# Builds the OUTER lab VM's initramfs (cpio newc): static busybox, the KVM modules of the lab kernel, the
# /init of scripts/lab/outer/, the scenario helpers (/lab/lib.sh) and file (/lab/scenarios.sh), and what the
# scenarios run: the inner kernel (/lab/vmlinuz), the inner initramfs (/lab/guest.cpio.gz), the VMM under test
# (/lab/stratovirt) and optionally QEMU, each with the shared libraries ldd lists.
#
#   scripts/lab/make-outer-initramfs.sh --out <file> --scenarios <file.sh> [--vmm <binary>] [--with-qemu]
#                                       [--with-strace] [--guest-initrd <cpio.gz>] [--generic-guest-initrd <cpio.gz>]
#                                       [--add <file>]... [--gzip]
#
#   --with-strace   adds strace (/usr/bin/strace) and its libraries, for counting the VMM's system calls
#   --guest-initrd  inner initramfs to use (default: built by make-guest-initramfs.sh into .cache/lab/)
#   --generic-guest-initrd
#                   also Debian's generic kernel (fetch.sh --generic) as /lab/vmlinuz-generic with this inner
#                   initramfs (make-guest-initramfs.sh --generic) as /lab/guest-generic.cpio.gz: $GENERIC_KERNEL and
#                   $GENERIC_INITRD of the scenarios, empty without this option
#   --add           copies another file into /lab/ (disk images, extra tools)
#   --gzip          compresses the archive (default: not compressed; TCG unpacks gzip slowly)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/lab/host.sh
source "$here/host.sh"

usage() {
    echo "usage: $0 --out <file> --scenarios <file.sh> [--vmm <binary>] [--with-qemu] [--with-strace]" \
        "[--guest-initrd <cpio.gz>] [--generic-guest-initrd <cpio.gz>] [--add <file>]... [--gzip]" >&2
    exit 2
}
out='' scenarios='' vmm='' with_qemu=0 with_strace=0 guest_initrd='' generic_initrd='' compress=0
extra=()
while (($#)); do
    case "$1" in
        --out) (($# >= 2)) || usage; out=$2; shift 2 ;;
        --scenarios) (($# >= 2)) || usage; scenarios=$2; shift 2 ;;
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --with-qemu) with_qemu=1; shift ;;
        --with-strace) with_strace=1; shift ;;
        --guest-initrd) (($# >= 2)) || usage; guest_initrd=$2; shift 2 ;;
        --generic-guest-initrd) (($# >= 2)) || usage; generic_initrd=$2; shift 2 ;;
        --add) (($# >= 2)) || usage; extra+=("$2"); shift 2 ;;
        --gzip) compress=1; shift ;;
        *) usage ;;
    esac
done
[[ -n "$out" && -n "$scenarios" ]] || usage
[[ -f "$scenarios" ]] || lab_die "scenario file $scenarios not found"
[[ -z "$vmm" || -x "$vmm" ]] || lab_die "VMM binary $vmm not found or not executable"
[[ -z "$generic_initrd" || -f "$generic_initrd" ]] || lab_die "generic guest initramfs $generic_initrd not found"
for f in "${extra[@]}"; do [[ -f "$f" ]] || lab_die "--add $f: no such file"; done

lab_need_packages busybox-static cpio
lab_kernel_env
qemu_bin=/usr/bin/qemu-system-x86_64
# Firmware QEMU's x86 machines load for a direct kernel boot (microvm: qboot; pc and q35: SeaBIOS, from Debian's
# seabios package, which QEMU's own folder does not link here; -kernel: the option ROMs).
qemu_fw_dirs=(/usr/share/qemu /usr/share/seabios)
qemu_fw_files=(bios-microvm.bin qboot.rom bios-256k.bin linuxboot.bin linuxboot_dma.bin pvh.bin kvmvapic.bin
    multiboot.bin multiboot_dma.bin)

mkdir -p "$lab_cache/tmp"
stage="$(mktemp -d "$lab_cache/tmp/outer.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,lib/modules,lab}

lab_say "outer initramfs: busybox, KVM modules, inner kernel and initramfs"
lab_install_busybox "$root"
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

# tun: taps for the virtio-net scenarios; loop and dm-mod: block devices for the durability and host-fault
# scenarios (dm-mod has the linear and error targets built in).
# vhost (dependencies first, from each module's depends=): the kernel's vhost-vsock and vhost-net behind the
# VMM's vhost-kernel devices, and AF_VSOCK for their host-side peers.
for m in virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko drivers/net/tun.ko \
    drivers/block/loop.ko drivers/md/dm-mod.ko \
    drivers/net/tap.ko drivers/vhost/vhost_iotlb.ko drivers/vhost/vhost.ko net/vmw_vsock/vsock.ko \
    net/vmw_vsock/vmw_vsock_virtio_transport_common.ko drivers/vhost/vhost_vsock.ko drivers/vhost/vhost_net.ko; do
    [[ -f "$LAB_MODULES/kernel/$m" ]] || lab_die "module $m missing from $LAB_MODULES"
    cp "$LAB_MODULES/kernel/$m" "$root/lib/modules/"
done
gcc -static -O2 -o "$root/bin/kvm-hold" "$here/kvm-hold.c" || lab_die "cannot build kvm-hold (gcc with static glibc)"
# A QMP client and the host side of the userspace vsock, for the device scenarios.
gcc -static -O2 -o "$root/bin/qmp-send" "$here/qmp-send.c" || lab_die "cannot build qmp-send"
gcc -static -O2 -o "$root/bin/vsock-echo" "$here/../../tests/guest/vsock-echo.c" || lab_die "cannot build vsock-echo"
gcc -static -O2 -o "$root/bin/qmp-fuzz" "$here/../../tests/qmp/qmp-fuzz.c" || lab_die "cannot build qmp-fuzz"
# The checker of the crash-durability trials, the trials themselves, and the host sides of the blk-fault and
# tap-gone scenarios.
gcc -static -O2 -o "$root/bin/durability-records" "$here/../../tests/guest/durability-records.c" \
    || lab_die "cannot build durability-records"
install -m 0755 "$here/durability-trials.sh" "$root/bin/durability-trials"
install -m 0755 "$here/blk-fault-host.sh" "$root/bin/blk-fault-host"
install -m 0755 "$here/tap-gone-host.sh" "$root/bin/tap-gone-host"
# The host side of the load test (bench/soak.sh, lab scenario soak-short).
install -m 0755 "$here/soak-host.sh" "$root/bin/soak-host"
# The host side of the chardev-gone scenario (socket chardev peers killed under a running VM).
install -m 0755 "$here/chardev-gone-host.sh" "$root/bin/chardev-gone-host"
# Kata Containers' QMP client (govmm) for the kata scenario.
"$here/../../tests/kata/build.sh" "$root/bin/kata-qmp" || lab_die "cannot build kata-qmp (tests/kata/build.sh)"
install -m 0755 "$here/outer/init" "$root/init"
cp "$here/outer/lib.sh" "$root/lab/lib.sh"
cp "$scenarios" "$root/lab/scenarios.sh"
cp "$LAB_VMLINUZ" "$root/lab/vmlinuz"
if [[ -n "$guest_initrd" ]]; then
    [[ -f "$guest_initrd" ]] || lab_die "guest initramfs $guest_initrd not found"
    cp "$guest_initrd" "$root/lab/guest.cpio.gz"
else
    "$here/make-guest-initramfs.sh" "$root/lab/guest.cpio.gz"
fi
for f in "${extra[@]}"; do cp "$f" "$root/lab/"; done

{
    echo "# Written by make-outer-initramfs.sh: what the scenarios run."
    echo "export KERNEL=/lab/vmlinuz INITRD=/lab/guest.cpio.gz"
} >"$root/lab/env.sh"

if [[ -n "$generic_initrd" ]]; then
    lab_kernel_env --generic
    cp "$LAB_GENERIC_VMLINUZ" "$root/lab/vmlinuz-generic"
    cp "$generic_initrd" "$root/lab/guest-generic.cpio.gz"
    echo "export GENERIC_KERNEL=/lab/vmlinuz-generic GENERIC_INITRD=/lab/guest-generic.cpio.gz" >>"$root/lab/env.sh"
else
    echo "export GENERIC_KERNEL= GENERIC_INITRD=" >>"$root/lab/env.sh"
fi

if [[ -n "$vmm" ]]; then
    lab_say "outer initramfs: VMM $vmm and its libraries"
    cp "$vmm" "$root/lab/stratovirt"
    lab_copy_ldd_libs "$vmm" "$root"
    echo "export VMM=/lab/stratovirt" >>"$root/lab/env.sh"
else
    echo "export VMM=" >>"$root/lab/env.sh"
fi

if ((with_qemu)); then
    lab_need_packages qemu-system-x86 seabios
    lab_say "outer initramfs: QEMU $qemu_bin, its libraries and firmware"
    mkdir -p "$root/usr/bin" "$root/lab/qemu-fw"
    cp "$qemu_bin" "$root/usr/bin/"
    lab_copy_ldd_libs "$qemu_bin" "$root"
    for f in "${qemu_fw_files[@]}"; do
        for d in "${qemu_fw_dirs[@]}"; do
            if [[ -e "$d/$f" ]]; then cp -L "$d/$f" "$root/lab/qemu-fw/"; break; fi
        done
    done
    echo "export QEMU=/usr/bin/qemu-system-x86_64 QEMU_FW=/lab/qemu-fw" >>"$root/lab/env.sh"
else
    echo "export QEMU= QEMU_FW=" >>"$root/lab/env.sh"
fi

# The vhost-user backends of the virtio-fs and vhost-user-blk scenarios (Debian's qemu-system-common 7.2), at
# their own paths.
lab_need_packages qemu-system-common
for b in /usr/lib/qemu/virtiofsd /usr/bin/qemu-storage-daemon; do
    mkdir -p "$root$(dirname "$b")"
    cp "$b" "$root$b"
    lab_copy_ldd_libs "$b" "$root"
done

# dmsetup switches a device-mapper table under a running VMM (the EIO host fault).
lab_need_packages dmsetup
cp /usr/sbin/dmsetup "$root/usr/sbin/"
lab_copy_ldd_libs /usr/sbin/dmsetup "$root"

if ((with_strace)); then
    lab_need_packages strace
    cp /usr/bin/strace "$root/usr/bin/"
    lab_copy_ldd_libs /usr/bin/strace "$root"
fi

mkdir -p "$(dirname "$out")"
if ((compress)); then
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$out.tmp"
else
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.tmp"
fi
mv "$out.tmp" "$out"
lab_say "outer initramfs $out ($(du -m "$out" | cut -f1) MiB)"
