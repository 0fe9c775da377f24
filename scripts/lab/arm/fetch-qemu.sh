#!/usr/bin/env bash
# Gets an arm64 qemu-system-aarch64 that runs inside the Arm lab's outer VM (for bench/arm-boot.sh), once: Debian's
# qemu-system-arm:arm64 and the arm64 library packages it depends on (apt-cache depends --recurse, library packages
# only; apt-get download, dpkg -x), extracted under .cache/lab-arm/qemu-sysroot/. Then the shared libraries the
# binary needs (NEEDED entries, followed recursively with aarch64-linux-gnu-readelf) are gathered, with the loader,
# in .cache/lab-arm/qemu/lib; the binary goes to .cache/lab-arm/qemu/qemu-system-aarch64. Fails naming any soname
# that none of the packages holds.
#   eval "$(scripts/lab/arm/fetch-qemu.sh)"   sets ARM_QEMU_DIR (bin and lib/ as above)
set -euo pipefail
# shellcheck source=scripts/lab/host.sh
source "$(dirname "$0")/../host.sh"
cache="$lab_root/.cache/lab-arm"
debs="$cache/qemu-debs" sysroot="$cache/qemu-sysroot" out="$cache/qemu"
command -v aarch64-linux-gnu-readelf >/dev/null || lab_die "aarch64-linux-gnu-readelf missing (scripts/lab/arm/fetch.sh installs it)"
dpkg --print-foreign-architectures | grep -qx arm64 || lab_die "dpkg has no arm64 architecture (run scripts/lab/arm/fetch.sh first)"

if [[ ! -x "$out/qemu-system-aarch64" ]]; then
    mkdir -p "$debs"
    # The library packages among qemu-system-arm's recursive dependencies (no data, common or tool packages).
    mapfile -t pkgs < <(
        echo qemu-system-arm:arm64
        apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
            --no-enhances qemu-system-arm:arm64 2>/dev/null |
            grep -E '^(lib|zlib)[^ ]*:arm64$' | grep -vE -- '-(data|common|bin|modules|dev|utils)(:arm64)$' | sort -u
    )
    ((${#pkgs[@]} > 10)) || lab_die "apt-cache depends qemu-system-arm:arm64 gave ${#pkgs[@]} packages (apt-get update?)"
    missing=()
    for p in "${pkgs[@]}"; do
        compgen -G "$debs/${p%:arm64}_*_arm64.deb" >/dev/null || missing+=("$p")
    done
    if ((${#missing[@]})); then
        lab_say "downloading qemu-system-arm:arm64 and ${#missing[@]} arm64 packages (apt-get download)"
        (cd "$debs" && apt-get download "${missing[@]}" 2>&1 | { grep -v "unsandboxed as root" >&2 || true; }) \
            || lab_die "apt-get download of the arm64 QEMU packages failed"
    fi
    rm -rf "$sysroot" "$out"
    mkdir -p "$sysroot" "$out/lib"
    for d in "$debs"/*_arm64.deb; do dpkg -x "$d" "$sysroot"; done
    bin="$sysroot/usr/bin/qemu-system-aarch64"
    [[ -x "$bin" ]] || lab_die "no usr/bin/qemu-system-aarch64 in qemu-system-arm:arm64"
    # Every directory of the sysroot that holds a shared library, searched in this order.
    mapfile -t libdirs < <(find "$sysroot" -name '*.so*' \( -type f -o -type l \) -printf '%h\n' | sort -u)
    # The NEEDED closure, breadth first.
    queue=("$bin") seen=' ' unresolved=()
    while ((${#queue[@]})); do
        f=${queue[0]}
        queue=("${queue[@]:1}")
        for so in $(aarch64-linux-gnu-readelf -d "$f" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
            [[ "$seen" == *" $so "* ]] && continue
            seen="$seen$so "
            hit=''
            for d in "${libdirs[@]}"; do
                if [[ -e "$d/$so" ]]; then hit="$d/$so"; break; fi
            done
            if [[ -z "$hit" ]]; then unresolved+=("$so"); continue; fi
            cp -L "$hit" "$out/lib/$so"
            queue+=("$out/lib/$so")
        done
    done
    ((${#unresolved[@]} == 0)) || { rm -rf "$out"; lab_die "no arm64 package holds: ${unresolved[*]}"; }
    [[ -e "$out/lib/ld-linux-aarch64.so.1" ]] || lab_die "no ld-linux-aarch64.so.1 in libc6:arm64"
    cp "$bin" "$out/qemu-system-aarch64"
    lab_say "arm64 QEMU: $(find "$out/lib" -type f | wc -l) libraries, $(du -sh "$out" | cut -f1) in $out"
fi
printf 'export ARM_QEMU_DIR=%q\n' "$out"
