#!/usr/bin/env bash
# Builds the INNER guest's initramfs (cpio newc, gzip): static busybox with its applet links, the /init from
# scripts/lab/guest/init, which prints GUEST-* markers and acts on lab.action= (poweroff, reboot, shell, test), the
# device tests of scripts/lab/guest/tests/ in /tests, and the lab kernel's virtio modules.
#
#   scripts/lab/make-guest-initramfs.sh <out.cpio.gz> [--generic] [--module <path>]... [--ext4 <image> <MiB>]
#
# --generic takes the modules from Debian's generic kernel (see fetch.sh --generic) instead of the cloud kernel,
# for guests that boot the generic kernel: the same list, as both build these drivers as modules.
# --module copies one more module of the lab kernel (path under lib/modules/<kver>/kernel/) into the initramfs;
# /init insmods the virtio modules, then these, in the order given. --ext4 also writes the same tree as an ext4
# image of that size (mkfs.ext4 -d: no loop mount, no root needed) for guests booted with a disk root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/lab/host.sh
source "$here/host.sh"

usage() { echo "usage: $0 <out.cpio.gz> [--generic] [--module <path under kernel/>]... [--ext4 <image> <MiB>]" >&2; exit 2; }
(($# >= 1)) || usage
out=$1
shift
# The Debian cloud kernel builds these as modules; dependencies first (from each module's depends=). The ACPI
# button driver and evdev let a q35 guest see the power button as an input event.
modules=(
    drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_mmio.ko
    drivers/virtio/virtio_pci_legacy_dev.ko drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci.ko
    drivers/block/virtio_blk.ko
    net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko
    drivers/char/virtio_console.ko drivers/char/hw_random/virtio-rng.ko drivers/virtio/virtio_balloon.ko
    net/vmw_vsock/vsock.ko net/vmw_vsock/vmw_vsock_virtio_transport_common.ko
    net/vmw_vsock/vmw_vsock_virtio_transport.ko
    fs/fuse/fuse.ko fs/fuse/virtiofs.ko
    drivers/acpi/button.ko drivers/input/evdev.ko
)
ext4_image= ext4_mib= generic=
while (($#)); do
    case "$1" in
        --generic) generic=--generic; shift ;;
        --module) (($# >= 2)) || usage; modules+=("$2"); shift 2 ;;
        --ext4) (($# >= 3)) || usage; ext4_image=$2 ext4_mib=$3; shift 3 ;;
        *) usage ;;
    esac
done

lab_need_packages busybox-static cpio
[[ -z "$ext4_image" ]] || lab_need_packages e2fsprogs
# ldd fails on a static executable.
if ldd /bin/busybox >/dev/null 2>&1; then
    lab_die "/bin/busybox is dynamically linked: the initramfs needs busybox-static"
fi

mkdir -p "$lab_cache/tmp"
stage="$(mktemp -d "$lab_cache/tmp/guest.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,lib/modules}

# Applet links made here rather than with --install at boot: nested guests are slow, every exec counts.
lab_install_busybox "$root"

install -m 0755 "$here/guest/init" "$root/init"
# busybox has no AF_VSOCK tool.
gcc -static -O2 -o "$root/bin/vsock-echo" "$here/../../tests/guest/vsock-echo.c" || lab_die "cannot build vsock-echo (gcc with static glibc)"
gcc -static -O2 -o "$root/bin/durability-records" "$here/../../tests/guest/durability-records.c" \
    || lab_die "cannot build durability-records"
gcc -static -O2 -o "$root/bin/soak-disk" "$here/../../tests/guest/soak-disk.c" || lab_die "cannot build soak-disk"
mkdir -p "$root/tests"
for t in "$here"/guest/tests/*.sh; do
    [[ -e "$t" ]] && install -m 0755 "$t" "$root/tests/"
done

# The console the kernel opens for init before anything is mounted (the kernel's built-in initramfs usually
# has one too; creating a device node needs root).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || lab_say "not root: no /dev/console node in the initramfs"

if ((${#modules[@]})); then
    lab_kernel_env $generic
    kernel_modules=$LAB_MODULES
    [[ -z "$generic" ]] || kernel_modules=$LAB_GENERIC_MODULES
    for m in "${modules[@]}"; do
        src="$kernel_modules/kernel/$m"
        [[ -f "$src" ]] || lab_die "module $m not found under $kernel_modules/kernel"
        cp "$src" "$root/lib/modules/"
        basename "$m" >>"$root/lib/modules/load.list"
    done
fi

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$out.tmp"
mv "$out.tmp" "$out"
lab_say "guest initramfs $out ($(du -k "$out" | cut -f1) KiB, ${#modules[@]} modules)"

if [[ -n "$ext4_image" ]]; then
    # The disk's /init knows it is already on the disk root by this file.
    : >"$root/.lab-disk-root"
    rm -f "$ext4_image"
    mkfs.ext4 -q -F -L labroot -E root_owner=0:0 -d "$root" "$ext4_image" "${ext4_mib}M"
    lab_say "guest ext4 root image $ext4_image (${ext4_mib} MiB)"
fi
