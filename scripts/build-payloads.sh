#!/usr/bin/env bash
# Build the payload guests in tests/payloads/*.S.
#
#   scripts/build-payloads.sh <outdir>
#
# For each tests/payloads/NAME.S writes:
#   <outdir>/NAME.bin      flat 64-bit code (load at 0x1000000 and enter at its first byte)
#   <outdir>/NAME.bzImage  the same code wrapped as a minimal bzImage (64-bit entry 0x100200)
# and <outdir>/blocked-call.so, the seccomp test shim (tests/seccomp/blocked-call.c).
# Needs gcc and binutils (ld, objcopy, readelf). Intermediate files go to <outdir>/obj/.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 <outdir>" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/tests/payloads
out=$1
mkdir -p "$out/obj"
out=$(cd "$out" && pwd)

for tool in gcc ld objcopy readelf; do
    command -v "$tool" >/dev/null || { echo "build-payloads: $tool not found (apt-get install gcc binutils)" >&2; exit 1; }
done

gcc -O2 -Wall -Wextra -o "$out/obj/mkbzimage" "$root/scripts/mkbzimage.c"

# Payloads are one RWX segment on purpose; silence binutils >= 2.39 about it.
ldflags=()
if ld --help 2>/dev/null | grep -- --no-warn-rwx-segments >/dev/null; then
    ldflags+=(--no-warn-rwx-segments)
fi

shopt -s nullglob
count=0
for s in "$src"/*.S; do
    name=$(basename "$s" .S)
    obj=$out/obj/$name.o
    elf=$out/obj/$name.elf
    gcc -c -nostdinc -I "$src" -o "$obj" "$s"
    # Position independence: every reference must have been resolved
    # PC-relative by the assembler, leaving no relocation to apply.
    if readelf -r "$obj" | grep "Relocation section" >/dev/null; then
        echo "build-payloads: $name.S is not position independent (it has relocations):" >&2
        readelf -r "$obj" >&2
        exit 1
    fi
    ld "${ldflags[@]}" -nostdlib -static -N -e _start -Ttext=0x1000000 -o "$elf" "$obj"
    objcopy -O binary -j .text "$elf" "$out/$name.bin"
    "$out/obj/mkbzimage" "$out/$name.bin" "$out/$name.bzImage" "$name"
    count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "build-payloads: no payloads in $src" >&2; exit 1; }

# The LD_PRELOAD shim whose system call no seccomp list allows (the blocked-call case).
gcc -O2 -Wall -Wextra -shared -fPIC -o "$out/blocked-call.so" "$root/tests/seccomp/blocked-call.c" -ldl
echo "build-payloads: $count payloads in $out"
