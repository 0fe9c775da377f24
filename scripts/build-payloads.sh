#!/usr/bin/env bash
# Build the payload guests: tests/payloads/NAME.S (assembly) and tests/payloads/NAME/*.c (freestanding C, one
# payload per folder, linked by tests/payloads/payload.ld with the section .text.entry first, which
# tests/payloads/entry.h gives).
#
#   scripts/build-payloads.sh <outdir>
#
# For each payload NAME writes:
#   <outdir>/NAME.bin      flat 64-bit code (load at 0x1000000 and enter at its first byte)
#   <outdir>/NAME.bzImage  the same code wrapped as a minimal bzImage (64-bit entry 0x100200)
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

for tool in gcc ld objcopy readelf nm; do
    command -v "$tool" >/dev/null || { echo "build-payloads: $tool not found (apt-get install gcc binutils)" >&2; exit 1; }
done

gcc -O2 -Wall -Wextra -o "$out/obj/mkbzimage" "$root/scripts/mkbzimage.c"

# Payloads are one RWX segment on purpose; silence binutils >= 2.39 about it.
ldflags=()
if ld --help 2>/dev/null | grep -- --no-warn-rwx-segments >/dev/null; then
    ldflags+=(--no-warn-rwx-segments)
fi

# C payloads: freestanding, position-independent code with no SSE (no FPU state is set up), no red zone, no
# stack protector or unwind tables, and no jump tables or memset-shaped loops turned into library calls.
cflags=(-O2 -Wall -Wextra -ffreestanding -nostdlib -fpie -fno-jump-tables -mno-red-zone -mgeneral-regs-only
    -fno-asynchronous-unwind-tables -fno-stack-protector -fno-tree-loop-distribute-patterns -fcf-protection=none)

# Writes NAME.bin and NAME.bzImage from the linked ELF of a payload.
emit() {  # emit <name> <elf>
    objcopy -O binary -j .text "$2" "$out/$1.bin"
    "$out/obj/mkbzimage" "$out/$1.bin" "$out/$1.bzImage" "$1"
    count=$((count + 1))
}

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
    emit "$name" "$elf"
done
for dir in "$src"/*/; do
    name=$(basename "$dir")
    sources=("$dir"*.c)
    ((${#sources[@]})) || continue
    objs=()
    for c in "${sources[@]}"; do
        obj=$out/obj/$name-$(basename "$c" .c).o
        gcc "${cflags[@]}" -I "$dir" -I "$src" -c -o "$obj" "$c"
        # Position independence: the compiler leaves references between sections and files (code to constants,
        # calls) to the linker, but all of them must be PC-relative; an absolute one (a pointer in static data)
        # would only be right at the link address.
        bad=$(readelf -rW "$obj" | awk '$3 ~ /^R_X86_64_/ && $3 != "R_X86_64_PC32" && $3 != "R_X86_64_PLT32"')
        if [ -n "$bad" ]; then
            echo "build-payloads: $name/$(basename "$c") is not position independent (absolute relocations):" >&2
            echo "$bad" >&2
            exit 1
        fi
        objs+=("$obj")
    done
    elf=$out/obj/$name.elf
    ld "${ldflags[@]}" -nostdlib -static -N -T "$src/payload.ld" -o "$elf" "${objs[@]}"
    # The entry must be the first byte (the VMM enters flat payloads there).
    entry=$(nm "$elf" | awk '$3 == "_start" { print $1 }')
    if [ "$((16#${entry:-0}))" -ne $((0x1000000)) ]; then
        echo "build-payloads: $name: _start is at 0x${entry:-?}, not at the start of the payload" >&2
        exit 1
    fi
    emit "$name" "$elf"
done
[ "$count" -gt 0 ] || { echo "build-payloads: no payloads in $src" >&2; exit 1; }

echo "build-payloads: $count payloads in $out"
