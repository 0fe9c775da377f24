#!/usr/bin/env bash
# Gets everything the nested lab needs on the host, once: the Debian packages (QEMU, static busybox, cpio,
# e2fsprogs) and Debian's cloud kernel package (a bzImage plus its modules), extracted under .cache/lab/.
# A second run only checks and prints.
#
#   scripts/lab/fetch.sh            progress on stderr; on stdout, lines to eval:
#                                   export LAB_KERNEL_PACKAGE=... LAB_KVER=... LAB_VMLINUZ=... LAB_MODULES=...
#   eval "$(scripts/lab/fetch.sh)"  to get those variables in the calling shell
set -euo pipefail
# shellcheck source=scripts/lab/host.sh
source "$(dirname "$0")/host.sh"

lab_need_packages qemu-system-x86 busybox-static cpio e2fsprogs

mkdir -p "$lab_cache"
env_file="$lab_cache/kernel.env"

print_env() {
    # shellcheck disable=SC1090
    source "$env_file"
    printf 'export LAB_KERNEL_PACKAGE=%q\nexport LAB_KVER=%q\nexport LAB_VMLINUZ=%q\nexport LAB_MODULES=%q\n' \
        "$LAB_KERNEL_PACKAGE" "$LAB_KVER" "$LAB_VMLINUZ" "$LAB_MODULES"
}

# Already fetched: the recorded kernel is still there.
if [[ -f "$env_file" ]]; then
    # shellcheck disable=SC1090
    source "$env_file"
    if [[ -f "${LAB_VMLINUZ:-}" && -d "${LAB_MODULES:-}" ]]; then
        lab_say "kernel $LAB_KERNEL_PACKAGE already in $lab_cache"
        print_env
        exit 0
    fi
fi

# The package the meta-package linux-image-cloud-amd64 depends on, e.g. linux-image-6.1.0-56-cloud-amd64.
resolve_package() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null \
        | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
pkg="$(resolve_package)"
if [[ -z "$pkg" ]]; then
    lab_say "apt-get update (to resolve linux-image-cloud-amd64)"
    lab_as_root apt-get update -q >&2 || lab_die "apt-get update failed"
    pkg="$(resolve_package)"
fi
[[ -n "$pkg" ]] || lab_die "cannot resolve the package behind linux-image-cloud-amd64 (apt-cache depends)"

debs="$lab_cache/debs"
mkdir -p "$debs"
deb="$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | head -1)"
if [[ -z "$deb" ]]; then
    lab_say "downloading $pkg (apt-get download)"
    # apt-get download writes into the current directory; its progress goes to stderr with ours. As root it warns
    # that the _apt user cannot reach the folder and downloads unsandboxed: expected here, so that line is dropped.
    (cd "$debs" && apt-get download "$pkg" 2>&1 | { grep -v "unsandboxed as root" >&2 || true; }) \
        || lab_die "apt-get download $pkg failed"
    deb="$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | head -1)"
    [[ -n "$deb" ]] || lab_die "apt-get download $pkg left no .deb in $debs"
fi

lab_say "extracting $(basename "$deb")"
dest="$lab_cache/kernel/$pkg"
rm -rf "$dest" "$dest.tmp"
mkdir -p "$dest.tmp"
dpkg -x "$deb" "$dest.tmp" || lab_die "dpkg -x $deb failed"
mv "$dest.tmp" "$dest"

vmlinuz="$(find "$dest/boot" -maxdepth 1 -name 'vmlinuz-*' | head -1)"
[[ -n "$vmlinuz" ]] || lab_die "$deb holds no boot/vmlinuz-*"
kver="${vmlinuz##*/vmlinuz-}"
modules="$dest/lib/modules/$kver"
[[ -d "$modules/kernel" ]] || lab_die "$deb holds no lib/modules/$kver/kernel"

printf 'LAB_KERNEL_PACKAGE=%q\nLAB_KVER=%q\nLAB_VMLINUZ=%q\nLAB_MODULES=%q\n' \
    "$pkg" "$kver" "$vmlinuz" "$modules" >"$env_file"
lab_say "kernel $kver ready: $vmlinuz"
print_env
