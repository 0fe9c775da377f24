#!/usr/bin/env bash
# Gets everything the nested lab needs on the host, once: the Debian packages (QEMU, static busybox, cpio,
# e2fsprogs) and Debian's cloud kernel package (a bzImage plus its modules), extracted under .cache/lab/; with
# --generic also Debian's generic kernel package (behind linux-image-amd64), for the scenarios that boot it as the
# inner guest. A second run only checks and prints.
#
#   scripts/lab/fetch.sh [--generic]    progress on stderr; on stdout, lines to eval:
#                                       export LAB_KERNEL_PACKAGE=... LAB_KVER=... LAB_VMLINUZ=... LAB_MODULES=...
#                                       (with --generic also LAB_GENERIC_KERNEL_PACKAGE, LAB_GENERIC_KVER, ...)
#   eval "$(scripts/lab/fetch.sh)"      to get those variables in the calling shell
set -euo pipefail
# shellcheck source=scripts/lab/host.sh
source "$(dirname "$0")/host.sh"

generic=0
case "${1:-}" in
    '') ;;
    --generic) generic=1 ;;
    *) echo "usage: $0 [--generic]" >&2; exit 2 ;;
esac

lab_need_packages qemu-system-x86 busybox-static cpio e2fsprogs

mkdir -p "$lab_cache"

# The kernel package a meta-package depends on, e.g. linux-image-6.1.0-56-cloud-amd64 for linux-image-cloud-amd64.
resolve_package() {  # resolve_package <meta-package>
    apt-cache depends "$1" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# Fetches the kernel package behind <meta-package> unless <env-file> records one that is still there, and prints
# its variables (<prefix>KERNEL_PACKAGE, <prefix>KVER, <prefix>VMLINUZ, <prefix>MODULES) as export lines.
fetch_kernel() {  # fetch_kernel <meta-package> <env-file> <prefix>
    local meta=$1 env_file=$2 prefix=$3 pkg deb dest vmlinuz kver modules debs v
    local vmlinuz_var="${prefix}VMLINUZ" modules_var="${prefix}MODULES" package_var="${prefix}KERNEL_PACKAGE"
    if [[ -f "$env_file" ]]; then
        # shellcheck disable=SC1090
        source "$env_file"
    fi
    if [[ -f "${!vmlinuz_var:-}" && -d "${!modules_var:-}" ]]; then
        lab_say "kernel ${!package_var} already in $lab_cache"
    else
        pkg="$(resolve_package "$meta")"
        if [[ -z "$pkg" ]]; then
            lab_say "apt-get update (to resolve $meta)"
            lab_as_root apt-get update -q >&2 || lab_die "apt-get update failed"
            pkg="$(resolve_package "$meta")"
        fi
        [[ -n "$pkg" ]] || lab_die "cannot resolve the package behind $meta (apt-cache depends)"

        debs="$lab_cache/debs"
        mkdir -p "$debs"
        deb="$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | head -1)"
        if [[ -z "$deb" ]]; then
            lab_say "downloading $pkg (apt-get download)"
            # apt-get download writes into the current directory; its progress goes to stderr with ours. As root it
            # warns that the _apt user cannot reach the folder and downloads unsandboxed: expected here, so that
            # line is dropped.
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

        printf '%sKERNEL_PACKAGE=%q\n%sKVER=%q\n%sVMLINUZ=%q\n%sMODULES=%q\n' \
            "$prefix" "$pkg" "$prefix" "$kver" "$prefix" "$vmlinuz" "$prefix" "$modules" >"$env_file"
        lab_say "kernel $kver ready: $vmlinuz"
        # shellcheck disable=SC1090
        source "$env_file"
    fi
    for v in KERNEL_PACKAGE KVER VMLINUZ MODULES; do
        v="$prefix$v"
        printf 'export %s=%q\n' "$v" "${!v}"
    done
}

fetch_kernel linux-image-cloud-amd64 "$lab_cache/kernel.env" LAB_
((generic == 0)) || fetch_kernel linux-image-amd64 "$lab_cache/kernel-generic.env" LAB_GENERIC_
