#!/usr/bin/env bash
# Builds the INNER guest's initramfs (cpio newc, gzip): static busybox with its applet links and the /init from
# scripts/lab/guest/init, which prints GUEST-* markers and acts on lab.action= (poweroff, reboot, shell).
#
#   scripts/lab/make-guest-initramfs.sh <out.cpio.gz> [--module <path>]...
#
# --module copies a module of the lab kernel (path under lib/modules/<kver>/kernel/, e.g.
# drivers/virtio/virtio_mmio.ko) into the initramfs; /init insmods them in the order given.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/lab/host.sh
source "$here/host.sh"

usage() { echo "usage: $0 <out.cpio.gz> [--module <path under kernel/>]..." >&2; exit 2; }
(($# >= 1)) || usage
out=$1
shift
modules=()
while (($#)); do
    case "$1" in
        --module) (($# >= 2)) || usage; modules+=("$2"); shift 2 ;;
        *) usage ;;
    esac
done

lab_need_packages busybox-static cpio
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

# The console the kernel opens for init before anything is mounted (the kernel's built-in initramfs usually
# has one too; creating a device node needs root).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || lab_say "not root: no /dev/console node in the initramfs"

if ((${#modules[@]})); then
    lab_kernel_env
    for m in "${modules[@]}"; do
        src="$LAB_MODULES/kernel/$m"
        [[ -f "$src" ]] || lab_die "module $m not found under $LAB_MODULES/kernel"
        cp "$src" "$root/lib/modules/"
        basename "$m" >>"$root/lib/modules/load.list"
    done
fi

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$out.tmp"
mv "$out.tmp" "$out"
lab_say "guest initramfs $out ($(du -k "$out" | cut -f1) KiB${modules[*]:+, modules: ${modules[*]}})"
