#!/usr/bin/env bash
# Extracts the ELF vmlinux that a bzImage carries (its payload_offset/payload_length fields point at the
# compressed kernel), so the ELF loader can be tested with the same distribution kernel.
#   scripts/lab/extract-vmlinux.sh <bzImage> <out-vmlinux>
set -euo pipefail
in=${1:?usage: extract-vmlinux.sh <bzImage> <out-vmlinux>}
out=${2:?usage: extract-vmlinux.sh <bzImage> <out-vmlinux>}
u8() { od -An -tu1 -j "$1" -N1 "$in" | tr -d ' '; }
u32() { od -An -tu4 -j "$1" -N4 "$in" | tr -d ' '; }
setup_sects=$(u8 $((0x1f1)))
((setup_sects == 0)) && setup_sects=4
offset=$(( (setup_sects + 1) * 512 + $(u32 $((0x248))) ))
length=$(u32 $((0x24c)))
magic=$(od -An -tx1 -j "$offset" -N6 "$in" | tr -d ' ')
case "$magic" in
    1f8b*) tool=(gzip -dc) ;;
    fd377a585a00) tool=(xz -dc) ;;
    28b52ffd*) tool=(zstd -dcq) ;;
    02214c18*) tool=(lz4 -dcq) ;;
    *) echo "extract-vmlinux: $in: unknown payload compression (magic $magic)" >&2; exit 1 ;;
esac
tail -c +$((offset + 1)) "$in" | head -c "$length" | "${tool[@]}" >"$out.tmp" 2>/dev/null || true
[[ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" == 7f454c46 ]] || {
    rm -f "$out.tmp"; echo "extract-vmlinux: $in: the payload did not decompress to an ELF file" >&2; exit 1; }
mv "$out.tmp" "$out"
