#!/usr/bin/env bash
# vhost-user-fs (virtiofsd) and vhost-user-blk (qemu-storage-daemon) under our VMM and under QEMU microvm, side by
# side in ONE nested-lab run against the same daemon configuration (everything there is 10-50x slower than
# native, so only the ratios mean something).
#
#   bench/vhost-user.sh [--vmm <stratovirt binary>] [--repeat <n>] [--secs <s>] [--files <n>] [--log <file>]
#                       [--timeout <s>]
#   bench/vhost-user.sh --report <log>      only prints the table of an earlier run's log
#
# Same kernel, guest initramfs, 512 MiB of shared RAM (ours mem-share=on, QEMU memory-backend-memfd,share=on) and
# 2 vCPUs for both; each run starts virtiofsd (-o sandbox=chroot) on an empty folder and qemu-storage-daemon on a
# fresh sparse 256 MiB raw image (outer /tmp, a tmpfs) (bench/vhost-user-host.sh). The guest
# (bench/vhost-user-guest.sh) measures:
#   fs seq write    dd if=/dev/zero bs=1M count=256 conv=fsync onto a file of the share
#   fs seq read     dd bs=1M of that file after echo 3 > drop_caches
#   fs create/stat/unlink   bench/fsmeta.c: 5,000 (--files) files of 16 bytes created, stat'ed, unlinked (each
#                   phase timed)
#   blk seq write   dd if=/dev/zero bs=1M count=256 oflag=direct onto the disk
#   blk seq read    dd bs=1M count=256 iflag=direct from the disk
#   blk 4K randread bench/randio.c: O_DIRECT 4 KiB random reads at queue depth 1 and 32, --secs seconds each
# and the virtio interrupts each step took. Runs alternate ours/QEMU, --repeat times (default 3); the table shows
# the median, each run in order, and the ratio ours vs QEMU with >1.0 meaning ours is better (higher MB/s or
# IOPS, or less time).
# --vmm defaults to $STRATOVIRT_BINARY, then out/stratovirt; without one QEMU runs alone.
# Inputs go to .cache/lab/bench/ (guest initramfs, fsmeta, randio); the log to .cache/lab/bench/vhost-user.log.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
    echo "usage: $0 [--vmm <binary>] [--repeat <n>] [--secs <s>] [--files <n>] [--log <file>] [--timeout <s>]" \
        "| --report <log>" >&2
    exit 2
}
vmm="${STRATOVIRT_BINARY:-$root/out/stratovirt}"
repeat=3
secs=10
files=5000
log="$root/.cache/lab/bench/vhost-user.log"
limit=''
report_only=''
while (($#)); do
    case "$1" in
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --repeat) (($# >= 2)) || usage; repeat=$2; shift 2 ;;
        --secs) (($# >= 2)) || usage; secs=$2; shift 2 ;;
        --files) (($# >= 2)) || usage; files=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --timeout) (($# >= 2)) || usage; limit=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
        *) usage ;;
    esac
done
for v in repeat secs files; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --$v wants a positive number, not '${!v}'" >&2; exit 2; }
done
# Per run: a boot, 4 x 256 MiB, 3 x --files metadata operations and 2 x --secs of random reads; in the lab that
# is a few minutes. The outer VM needs its own boot and the copy of the inputs on top.
run_limit=900
[[ -n "$limit" ]] || limit=$((600 + repeat * 2 * run_limit))
[[ "$limit" =~ ^[0-9]+$ ]] || { echo "bench: --timeout wants whole seconds, not '$limit'" >&2; exit 2; }

# Prints the table from a lab log of these scenarios.
report() {  # report <log>
    echo
    echo "vhost-user-fs / vhost-user-blk in the nested lab, ours vs QEMU microvm, same daemons (log: $1," \
        "$(date -u -r "$1" +%Y-%m-%dT%H:%MZ))"
    tr -d '\r' <"$1" | awk '
        function median(k,   i, j, t, a) {
            for (i = 1; i <= n[k]; i++) a[i] = val[k, i]
            for (i = 2; i <= n[k]; i++)
                for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n[k] % 2 ? a[(n[k] + 1) / 2] : (a[n[k] / 2] + a[n[k] / 2 + 1]) / 2
        }
        function add(k, v) { val[k, ++n[k]] = v; runs[k] = runs[k] (runs[k] == "" ? "" : " ") sprintf("%.1f", v) }
        function cell(k) { return n[k] ? sprintf("%.1f (%s)", median(k), runs[k]) : "n/a" }
        BEGIN {
            nm = split("fs-write fs-read fs-create fs-stat fs-unlink blk-write blk-read blk-randread1 blk-randread32", order, " ")
            label["fs-write"] = "fs seq write MB/s"; label["fs-read"] = "fs seq read MB/s"
            label["fs-create"] = "fs create (all files) ms"; label["fs-stat"] = "fs stat (all files) ms"
            label["fs-unlink"] = "fs unlink (all files) ms"
            label["blk-write"] = "blk seq write MB/s"; label["blk-read"] = "blk seq read MB/s"
            label["blk-randread1"] = "blk 4K randread QD1 IOPS"; label["blk-randread32"] = "blk 4K randread QD32 IOPS"
            # dd moves 256 MiB: MB/s is 268435.456 / ms. Metadata phases stay in ms (lower is better).
            mbps["fs-write"] = mbps["fs-read"] = mbps["blk-write"] = mbps["blk-read"] = 1
            lower["fs-create"] = lower["fs-stat"] = lower["fs-unlink"] = 1
        }
        /^@@BEGIN / { vm = ""; if ($2 ~ /^(ours|qemu)-r[0-9]+$/) { vm = $2; sub(/-r[0-9]+$/, "", vm); ran[vm]++ }; next }
        /^@@NOTE / { notes = notes "  " substr($0, 8) "\n"; next }
        vm == "" { next }
        /GUEST-VUB-FIG / {
            t = $0; sub(/.*GUEST-VUB-FIG /, "", t); split(t, w, " "); m = w[1]; v = w[2] + 0
            sub(/-(ms|iops)$/, "", m)
            if (mbps[m]) { if (v <= 0) next; v = 268435.456 / v }
            add(vm SUBSEP m, v)
        }
        /GUEST-VUB-IRQS / { t = $0; sub(/.*GUEST-VUB-IRQS /, "", t); split(t, w, " "); irqs[vm, w[1]] = irqs[vm, w[1]] " " w[2] }
        /GUEST-VUB-FEATURES / && !feat[vm, $0]++ { t = $0; sub(/.*GUEST-VUB-FEATURES /, "", t); features[vm] = features[vm] "; " t }
        /GUEST-VUB-QUEUES / { t = $0; sub(/.*GUEST-VUB-QUEUES /, "", t); queues[vm] = t }
        /GUEST-VUB-ERROR |HOST-VUB-ERROR / { t = $0; sub(/.*(GUEST|HOST)-VUB-ERROR /, "", t); errs = errs "  " vm ": " t "\n" }
        /^@@END / { rcs[vm] = rcs[vm] (rcs[vm] == "" ? "" : " ") substr($3, 4); vm = ""; next }
        END {
            f = "%-26s %-28s %-28s %s\n"
            printf f, "metric", "ours median (runs)", "QEMU median (runs)", "ours vs QEMU (>1.0 = ours better)"
            for (i = 1; i <= nm; i++) {
                m = order[i]; o = "ours" SUBSEP m; q = "qemu" SUBSEP m
                r = "n/a"
                if (n[o] && n[q] && median(o) > 0 && median(q) > 0)
                    r = sprintf("%.2f", lower[m] ? median(q) / median(o) : median(o) / median(q))
                printf f, label[m], cell(o), cell(q), r
            }
            printf "runs: ours %d (exit codes: %s), QEMU %d (exit codes: %s)\n", ran["ours"], rcs["ours"] == "" ? "-" : rcs["ours"],
                ran["qemu"], rcs["qemu"] == "" ? "-" : rcs["qemu"]
            split("fs-write fs-read fs-meta blk-write blk-read", steps, " ")
            for (v in ran) {
                line = ""
                for (i = 1; i <= 5; i++) line = line " " steps[i] "=" substr(irqs[v, steps[i]], 2)
                printf "virtio interrupts per step, %s (each run):%s\n", v, line
                printf "negotiated, %s%s; disk queues: %s\n", v, features[v], queues[v]
            }
            if (errs != "") printf "errors:\n%s", errs
            if (notes != "") printf "notes:\n%s", notes
        }'
}

lab_comparison_setup "$report_only" "$vmm"

work="$root/.cache/lab/bench"
mkdir -p "$work" "$(dirname "$log")"
tmp=$(mktemp -d "$work/vhost-user.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

bench_guest_initramfs "$work/vhost-user-guest.cpio.gz" "$tmp" "$root/bench/vhost-user-guest.sh" vhost-user-bench randio fsmeta

scenarios="$tmp/scenarios.sh"
{
    echo "BENCH_REPEAT=$repeat"
    echo "BENCH_SECS=$secs"
    echo "BENCH_FILES=$files"
    echo "BENCH_TIMEOUT=$run_limit"
    cat "$root/bench/vhost-user-scenarios.sh"
} >"$scenarios"
cp "$root/bench/vhost-user-host.sh" "$tmp/vhost-user-host.sh"

status=0
LAB_SILENCE_LIMIT=${LAB_SILENCE_LIMIT:-600} "$root/scripts/lab/run.sh" --scenarios "$scenarios" --log "$log" --timeout "$limit" \
    --guest-initrd "$work/vhost-user-guest.cpio.gz" --add "$tmp/vhost-user-host.sh" "${run_args[@]}" || status=$?

report "$log"
exit "$status"
