#!/usr/bin/env bash
# Gets what the Arm nested lab needs, once: qemu-system-aarch64 and Debian's arm64 kernel and static busybox
# (apt-get download after `dpkg --add-architecture arm64`), extracted under .cache/lab-arm/.
#   eval "$(scripts/lab/arm/fetch.sh)"   sets ARM_KVER, ARM_VMLINUZ (the kernel Image) and ARM_BUSYBOX
set -euo pipefail
# shellcheck source=scripts/lab/host.sh
source "$(dirname "$0")/../host.sh"
cache="$lab_root/.cache/lab-arm"
lab_need_packages qemu-system-arm cpio gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu
mkdir -p "$cache/debs"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    lab_say "adding the arm64 architecture to dpkg (apt-get update)"
    lab_as_root dpkg --add-architecture arm64
    lab_as_root apt-get update -q >&2 || lab_die "apt-get update failed"
fi
pkg="$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
[[ -n "$pkg" ]] || lab_die "cannot resolve the package behind linux-image-arm64:arm64 (apt-cache depends)"
pkg="${pkg%:arm64}"
for p in "$pkg" busybox-static; do
    if ! compgen -G "$cache/debs/${p}_*_arm64.deb" >/dev/null; then
        lab_say "downloading $p:arm64 (apt-get download)"
        (cd "$cache/debs" && apt-get download "$p:arm64" 2>&1 | { grep -v "unsandboxed as root" >&2 || true; }) \
            || lab_die "apt-get download $p:arm64 failed"
    fi
    dir="$cache/$p"
    [[ -d "$dir" ]] || dpkg -x "$(compgen -G "$cache/debs/${p}_*_arm64.deb" | head -1)" "$dir"
done
kver="${pkg#linux-image-}"
vmlinuz="$cache/$pkg/boot/vmlinuz-$kver"
[[ -f "$vmlinuz" ]] || lab_die "$vmlinuz missing from $pkg"
printf 'export ARM_KVER=%q\nexport ARM_VMLINUZ=%q\nexport ARM_BUSYBOX=%q\n' \
    "$kver" "$vmlinuz" "$cache/busybox-static/bin/busybox"
