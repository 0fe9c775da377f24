#!/usr/bin/env bash
# Runs scenarios in the Arm nested lab: qemu-system-aarch64 (TCG, -cpu max, virtualization=on, GICv3) boots
# Debian's arm64 kernel at EL2, which has KVM built in; the arm64 VMM under test boots the same kernel inside.
#
#   scripts/lab/arm/run.sh --scenarios <file.sh> --log <out.log> [--vmm <arm64 stratovirt>] [--with-qemu] [--timeout <s>]
#
# The scenario file is sourced in the outer VM after scripts/lab/outer/lib.sh (scenario, @@BEGIN/@@END markers)
# with $VMM, $KERNEL (the uncompressed Image), $INITRD (busybox, scripts/lab/guest/init, the virtio modules) and
# $DISK (a 4 MiB raw image of random content, its sha256 in $DISK_SHA256); /lab/bzImage-header and
# /lab/old-Image-header are kernels to be refused; /lab/ozone is the arm64 ozone found beside the VMM, if there is
# one. With --with-qemu, Debian's arm64 qemu-system-aarch64
# and its libraries (scripts/lab/arm/fetch-qemu.sh) go to /lab/qemu/ and $QEMU names a wrapper that execs it
# through its own loader (the process keeps the caller's pid). The outer console goes to stdout and the log; the
# outer VM is killed after --timeout seconds (default 600) or ${LAB_SILENCE_LIMIT:-120}s without output. Exit
# status 0 when "@@LAB DONE" was seen. Wrap it in `flock /tmp/lab.lock` (the lab is shared).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/lab/host.sh
source "$here/../host.sh"

usage() { echo "usage: $0 --scenarios <file.sh> --log <out.log> [--vmm <binary>] [--with-qemu] [--timeout <s>]" >&2; exit 2; }
scenarios='' log='' limit=600 vmm="$lab_root/out/aarch64/stratovirt" with_qemu=
while (($#)); do
    case "$1" in
        --scenarios) (($# >= 2)) || usage; scenarios=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --timeout) (($# >= 2)) || usage; limit=$2; shift 2 ;;
        --with-qemu) with_qemu=1; shift ;;
        *) usage ;;
    esac
done
[[ -n "$scenarios" && -n "$log" ]] || usage
[[ -f "$scenarios" ]] || lab_die "no scenario file $scenarios"
[[ "$limit" =~ ^[0-9]+$ ]] || lab_die "--timeout wants whole seconds, not '$limit'"
[[ -x "$vmm" ]] || lab_die "no arm64 VMM at $vmm (scripts/build.sh --arch arm64)"
eval "$("$here/fetch.sh")"
[[ -z "$with_qemu" ]] || eval "$("$here/fetch-qemu.sh")"
modules="$(dirname "$ARM_VMLINUZ")/../lib/modules/$ARM_KVER/kernel"
cross=/usr/aarch64-linux-gnu/lib

work="$(mktemp -d "$lab_root/.cache/lab-arm/run.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Both levels boot the Image. Debian 12's arm64 vmlinuz is the plain Image (with its EFI stub header); a
# gzip-compressed one is unpacked.
if [[ "$(head -c 2 "$ARM_VMLINUZ" | od -An -tx1 | tr -d ' ')" == 1f8b ]]; then
    zcat "$ARM_VMLINUZ" >"$work/Image"
else
    cp "$ARM_VMLINUZ" "$work/Image"
fi

# Inner guest: busybox, the x86 lab's /init, the virtio modules (Debian builds them as modules; deps first).
guest="$work/guest"
mkdir -p "$guest"/{dev,proc,sys,tmp,root,lib/modules}
lab_install_busybox "$guest" "$ARM_BUSYBOX"
install -m 0755 "$here/../guest/init" "$guest/init"
for m in drivers/virtio/virtio_mmio.ko drivers/block/virtio_blk.ko drivers/char/virtio_console.ko \
    drivers/char/hw_random/virtio-rng.ko net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko; do
    cp "$modules/$m" "$guest/lib/modules/"
    basename "$m" >>"$guest/lib/modules/load.list"
done
# The x86 lab's device tests (shell only), and the Arm lab's own.
mkdir -p "$guest/tests"
install -m 0755 "$here"/../guest/tests/*.sh "$here"/guest-tests/*.sh "$guest/tests/"
mknod -m 600 "$guest/dev/console" c 5 1 2>/dev/null || true
(cd "$guest" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$work/guest.cpio.gz"

# Outer initramfs: busybox, the VMM with the libraries it needs, the Image, the guest initramfs, a disk.
root="$work/outer"
mkdir -p "$root"/{dev,proc,sys,tmp,root,lab,lib}
lab_install_busybox "$root" "$ARM_BUSYBOX"
install -m 0755 "$here/outer-init" "$root/init"
mkdir -p "$root/lib/modules"
cp "$modules/drivers/net/tun.ko" "$root/lib/modules/" # taps for virtio-net
cp "$here/../outer/lib.sh" "$root/lab/lib.sh"
cp "$scenarios" "$root/lab/scenarios.sh"
cp "$work/Image" "$root/lab/Image"
cp "$work/guest.cpio.gz" "$root/lab/guest.cpio.gz"
install -m 0755 "$vmm" "$root/lab/stratovirt"
# The arm64 ozone built beside the VMM, for the sandbox scenario.
[[ -x "$(dirname "$vmm")/ozone" ]] && install -m 0755 "$(dirname "$vmm")/ozone" "$root/lab/ozone"
aarch64-linux-gnu-gcc -static -O2 -o "$root/bin/qmp-send" "$here/../qmp-send.c" || lab_die "cannot build qmp-send for arm64"
# The libraries of the dynamically linked binaries (ozone; the VMM is static) and their interpreter.
for lib in $(for exe in "$vmm" "$(dirname "$vmm")/ozone"; do
        [[ -e "$exe" ]] && aarch64-linux-gnu-readelf -d "$exe" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'
    done | sort -u) ld-linux-aarch64.so.1; do
    cp -L "$cross/$lib" "$root/lib/$lib"
done
if [[ -n "$with_qemu" ]]; then
    mkdir -p "$root/lab/qemu"
    cp -r "$ARM_QEMU_DIR/lib" "$ARM_QEMU_DIR/qemu-system-aarch64" "$root/lab/qemu/"
    printf '#!/bin/sh\nexec /lab/qemu/lib/ld-linux-aarch64.so.1 --library-path /lab/qemu/lib /lab/qemu/qemu-system-aarch64 "$@"\n' \
        >"$root/lab/qemu/run"
    chmod 0755 "$root/lab/qemu/run"
fi
head -c 4M /dev/urandom >"$root/lab/disk.raw"
# Kernels the arm64 binary must refuse: an x86 bzImage's header ("HdrS" at 0x202) and an Image header from before
# Linux 3.17 (the arm64 magic, image_size 0).
{ head -c 514 /dev/zero; printf 'HdrS'; head -c 506 /dev/zero; } >"$root/lab/bzImage-header"
{ head -c 56 /dev/zero; printf 'ARM\x64'; head -c 964 /dev/zero; } >"$root/lab/old-Image-header"
{
    echo "export VMM=/lab/stratovirt KERNEL=/lab/Image INITRD=/lab/guest.cpio.gz DISK=/lab/disk.raw"
    echo "export DISK_SHA256=$(sha256sum "$root/lab/disk.raw" | cut -d' ' -f1)"
    [[ -z "$with_qemu" ]] || echo "export QEMU=/lab/qemu/run"
} >"$root/lab/env.sh"
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$work/outer.cpio"

silence=${LAB_SILENCE_LIMIT:-120}
lab_say "booting the Arm outer VM (qemu-system-aarch64 TCG, virt with EL2 and GICv3, 2 vCPUs; timeout ${limit}s, or ${silence}s without output)"
mkdir -p "$(dirname "$log")"
start=$SECONDS
set +e
lab_run_watched "$log" "$limit" "$silence" "$work/outer.cpio" \
    qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
    -kernel "$work/Image" -initrd "$work/outer.cpio" -append "console=ttyAMA0 quiet panic=1 rdinit=/init" \
    -nographic -no-reboot
qemu_rc=$LAB_VM_RC wedged=$LAB_VM_WEDGED
set -e
if [[ -n "$wedged" ]]; then
    lab_say "error: the outer VM printed nothing for ${silence}s and was killed"
elif ((qemu_rc != 0)); then
    lab_say "error: qemu-system-aarch64 exited with status $qemu_rc (124: the ${limit}s timeout)"
fi
lab_say "Arm outer VM ran $((SECONDS - start))s (host wall); log: $log"
tr -d '\r' <"$log" | grep -q '^@@LAB DONE' && exit 0
lab_say "error: no '@@LAB DONE' in the console: the scenarios did not finish"
exit 1
