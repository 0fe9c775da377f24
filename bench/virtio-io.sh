#!/usr/bin/env bash
# virtio-blk and virtio-net throughput of a stock Linux guest under our VMM and under QEMU on the same machine
# type (microvm with virtio-mmio, or q35 with virtio-pci), side by side in ONE nested-lab run (everything there is
# 10-50x slower than native, so only the ratios mean something), plus the VMM's memory with those devices attached.
#
#   bench/virtio-io.sh [--machine microvm|q35] [--vmm <stratovirt binary>] [--repeat <n>] [--secs <s>]
#                      [--log <file>] [--timeout <s>] [--vhost-net]
#   bench/virtio-io.sh --report <log>      only prints the table of an earlier run's log
#
# Same kernel, guest initramfs, 256 MiB and 2 vCPUs for both; each run gets a fresh sparse 256 MiB raw scratch
# disk (outer /tmp, a tmpfs; ours direct=off, QEMU cache=writeback) and a tap in a network namespace of its own
# whose host end (10.0.2.2) serves a 64 MiB file with busybox httpd. The guest (bench/virtio-io-guest.sh) measures:
#   blk seq write   dd if=/dev/zero bs=1M count=256 conv=fsync onto the disk
#   blk seq read    dd bs=1M of the disk after echo 3 > drop_caches
#   blk 4K rand     bench/randio.c: O_DIRECT 4 KiB reads, then writes, at random offsets, queue depth 1 and 32
#                   (native AIO), --secs seconds each
#   net rx          wget -O /dev/null of the 64 MiB file (TCP, host -> guest)
#   net tx          bench/tcpblast.c: 64 MiB over TCP to the host end's sink (guest -> host)
# and the host side (bench/virtio-io-host.sh) the Rss of the VMM's mappings < 128 MiB (the rule of
# bench/memory.sh: guest RAM excluded by size) 2 s into the guest's idle pause after boot, and again after the I/O.
# Runs alternate ours/QEMU, --repeat times (default 2); the table shows the median and each run in order.
# --vhost-net adds to each repeat two net-only runs (no disk) with the host kernel's vhost-net serving the net
# queues, ours and QEMU's, and prints net rx of all four: ours and QEMU in user space, ours and QEMU on vhost-net.
# --machine defaults to microvm; q35 puts both VMMs' disk and NIC on virtio-pci functions of pcie.0 (QEMU's
# modern-only, as ours), so the two tables compare virtio-pci with QEMU's and with our virtio-mmio.
# --vmm defaults to $STRATOVIRT_BINARY, then out/stratovirt; without one QEMU runs alone.
# Inputs go to .cache/lab/bench/ (guest initramfs, randio, tcpblast); the log to .cache/lab/bench/virtio-io.log
# (virtio-io-q35.log for q35).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
    echo "usage: $0 [--machine microvm|q35] [--vmm <binary>] [--repeat <n>] [--secs <s>] [--log <file>]" \
        "[--timeout <s>] [--vhost-net] | --report <log>" >&2
    exit 2
}
vmm="${STRATOVIRT_BINARY:-$root/out/stratovirt}"
repeat=2
secs=10
log=''
machine=microvm
limit=''
report_only=''
vhost=0
while (($#)); do
    case "$1" in
        --machine) (($# >= 2)) || usage; machine=$2; shift 2 ;;
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --repeat) (($# >= 2)) || usage; repeat=$2; shift 2 ;;
        --secs) (($# >= 2)) || usage; secs=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --timeout) (($# >= 2)) || usage; limit=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        --vhost-net) vhost=1; shift ;;
        -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
        *) usage ;;
    esac
done
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat wants a positive number, not '$repeat'" >&2; exit 2; }
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --secs wants a positive number, not '$secs'" >&2; exit 2; }
[[ "$machine" == microvm || "$machine" == q35 ]] || { echo "bench: --machine is microvm or q35, not '$machine'" >&2; exit 2; }
if [[ -z "$log" ]]; then
    if [[ "$machine" == microvm ]]; then log="$root/.cache/lab/bench/virtio-io.log"; else log="$root/.cache/lab/bench/virtio-io-$machine.log"; fi
fi
# Per run: a boot, 2 x 256 MiB through the disk, --secs of random reads, 64 MiB over the net, idle pauses; in the
# lab that is a few minutes. The outer VM needs its own boot and the copy of the inputs on top.
run_limit=900
[[ -n "$limit" ]] || limit=$((600 + repeat * (2 + 2 * vhost) * run_limit))
[[ "$limit" =~ ^[0-9]+$ ]] || { echo "bench: --timeout wants whole seconds, not '$limit'" >&2; exit 2; }

# Prints the table from a lab log of these scenarios.
report() {  # report <log>
    echo
    echo "virtio-blk / virtio-net in the nested lab, ours vs QEMU $(sed -n 's/^@@NOTE bench: machine //p' "$1" | head -1) (log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ))"
    tr -d '\r' <"$1" | awk '
        function median(k,   i, j, t, a) {
            if (!n[k]) return ""
            for (i = 1; i <= n[k]; i++) a[i] = val[k, i]
            for (i = 2; i <= n[k]; i++)
                for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n[k] % 2 ? a[(n[k] + 1) / 2] : (a[n[k] / 2] + a[n[k] / 2 + 1]) / 2
        }
        function show(vm,   m) { m = median(vm SUBSEP "net"); return m == "" ? "n/a" : sprintf("%.1f (%s)", m, runs[vm SUBSEP "net"]) }
        function add(vm, metric, v) {
            k = vm SUBSEP metric
            val[k, ++n[k]] = v
            runs[k] = runs[k] (runs[k] == "" ? "" : " ") sprintf(fmt[metric], v)
        }
        function field(line, name,   t) {
            if (!match(line, name "=[0-9.]+")) return ""
            t = substr(line, RSTART + length(name) + 1, RLENGTH - length(name) - 1)
            return t + 0
        }
        BEGIN {
            nm = split("write read read1 read32 write1 write32 net tx rss_idle rss_io", order, " ")
            label["write"] = "blk seq write MB/s"; fmt["write"] = "%.1f"; better["write"] = "higher"
            label["read"] = "blk seq read MB/s"; fmt["read"] = "%.1f"; better["read"] = "higher"
            label["read1"] = "blk 4K randread QD1 IOPS"; label["read32"] = "blk 4K randread QD32 IOPS"
            label["write1"] = "blk 4K randwrite QD1 IOPS"; label["write32"] = "blk 4K randwrite QD32 IOPS"
            fmt["read1"] = fmt["read32"] = fmt["write1"] = fmt["write32"] = "%.0f"
            better["read1"] = better["read32"] = better["write1"] = better["write32"] = "higher"
            label["net"] = "net rx (host->guest) MB/s"; fmt["net"] = "%.1f"; better["net"] = "higher"
            label["tx"] = "net tx (guest->host) MB/s"; fmt["tx"] = "%.1f"; better["tx"] = "higher"
            label["rss_idle"] = "VMM Rss <128M idle MiB"; fmt["rss_idle"] = "%.1f"; better["rss_idle"] = "lower"
            label["rss_io"] = "VMM Rss <128M after I/O MiB"; fmt["rss_io"] = "%.1f"; better["rss_io"] = "lower"
        }
        /^@@BEGIN / {
            vm = ""
            if ($2 ~ /^(ours|qemu)(vh)?-r[0-9]+$/) { vm = $2; sub(/-r[0-9]+$/, "", vm); ran[vm]++ }
            next
        }
        /^@@NOTE / { notes = notes "  " substr($0, 8) "\n"; next }
        vm == "" { next }
        /GUEST-VIO-BLK-WRITE / { ms = field($0, "ms"); if (ms > 0) add(vm, "write", field($0, "bytes") / ms / 1000) }
        /GUEST-VIO-BLK-READ / { ms = field($0, "ms"); if (ms > 0) add(vm, "read", field($0, "bytes") / ms / 1000) }
        /GUEST-VIO-BLK-RAND / { t = $0; sub(/.*mode=/, "", t); sub(/ .*/, "", t); add(vm, t field($0, "depth"), field($0, "iops")) }
        /GUEST-VIO-NET-RX / { ms = field($0, "ms"); if (ms > 0) add(vm, "net", field($0, "bytes") / ms / 1000) }
        /GUEST-VIO-NET-TX / { ms = field($0, "ms"); if (ms > 0) add(vm, "tx", field($0, "bytes") / ms / 1000) }
        /HOST-VIO-RSS idle / { add(vm, "rss_idle", field($0, "small_kb") / 1024) }
        /HOST-VIO-RSS after-io / { add(vm, "rss_io", field($0, "small_kb") / 1024) }
        /GUEST-VIO-IRQS / {
            t = $0; sub(/.*GUEST-VIO-IRQS /, "", t); nf = split(t, w, " "); total = 0
            for (i = 2; i <= nf; i++) { sub(/.*=/, "", w[i]); total += w[i] }
            if (w[1] == "blk-write") irqrun[vm] = ""
            else if (prevstep[vm] != "") irqrun[vm] = irqrun[vm] " " prevstep[vm] "=" (total - prevtotal[vm])
            prevstep[vm] = w[1]; prevtotal[vm] = total
        }
        /GUEST-VIO-ERROR |HOST-VIO-ERROR / { t = $0; sub(/.*(GUEST|HOST)-VIO-ERROR /, "", t); errs = errs "  " vm ": " t "\n" }
        /^@@END / { rcs[vm] = rcs[vm] (rcs[vm] == "" ? "" : " ") substr($3, 4); vm = ""; next }
        END {
            f = "%-28s %-27s %-27s %-10s %-8s %s\n"
            printf f, "metric", "ours median (runs)", "QEMU median (runs)", "ours/QEMU", "better", "target >= 1.2"
            for (i = 1; i <= nm; i++) {
                m = order[i]
                o = median("ours" SUBSEP m); q = median("qemu" SUBSEP m)
                os = o == "" ? "n/a" : sprintf(fmt[m] " (%s)", o, runs["ours" SUBSEP m])
                qs = q == "" ? "n/a" : sprintf(fmt[m] " (%s)", q, runs["qemu" SUBSEP m])
                r = (o != "" && q != "" && q > 0) ? sprintf("%.2f", o / q) : "n/a"
                verdict = better[m] != "higher" ? "-" : r == "n/a" ? "n/a" : r + 0 >= 1.2 ? "met" : "missed"
                printf f, label[m], os, qs, r, better[m], verdict
            }
            printf "runs: ours %d (exit codes: %s), QEMU %d (exit codes: %s)\n", ran["ours"], rcs["ours"] == "" ? "-" : rcs["ours"],
                ran["qemu"], rcs["qemu"] == "" ? "-" : rcs["qemu"]
            if (ran["oursvh"] || ran["qemuvh"]) {
                printf "net rx (host->guest) MB/s, median: ours user space %s, ours vhost-net %s, QEMU user space %s, QEMU vhost-net %s\n",
                    show("ours"), show("oursvh"), show("qemu"), show("qemuvh")
                o = median("oursvh" SUBSEP "net"); q = median("qemuvh" SUBSEP "net"); u = median("ours" SUBSEP "net")
                printf "ours vhost-net / QEMU vhost-net: %s; ours vhost-net / ours user space: %s (vhost runs: ours %d, QEMU %d, exit codes %s / %s)\n",
                    (o != "" && q > 0) ? sprintf("%.2f", o / q) : "n/a", (o != "" && u > 0) ? sprintf("%.2f", o / u) : "n/a",
                    ran["oursvh"], ran["qemuvh"], rcs["oursvh"] == "" ? "-" : rcs["oursvh"], rcs["qemuvh"] == "" ? "-" : rcs["qemuvh"]
            }
            for (v in irqrun) printf "virtio interrupts per step, last run of %s:%s\n", v, irqrun[v]
            if (errs != "") printf "errors:\n%s", errs
            if (notes != "") printf "notes:\n%s", notes
        }'
}

lab_comparison_setup "$report_only" "$vmm"

work="$root/.cache/lab/bench"
mkdir -p "$work" "$(dirname "$log")"
tmp=$(mktemp -d "$work/virtio-io.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

bench_guest_initramfs "$work/virtio-io-guest.cpio.gz" "$tmp" "$root/bench/virtio-io-guest.sh" virtio-io randio tcpblast
cp "$tmp/extra/bin/tcpblast" "$tmp/tcpblast"  # the host end's sink, in the outer VM

scenarios="$tmp/scenarios.sh"
{
    echo "BENCH_REPEAT=$repeat"
    echo "BENCH_SECS=$secs"
    echo "BENCH_TIMEOUT=$run_limit"
    echo "BENCH_VHOST=$vhost"
    echo "BENCH_MACHINE=$machine"
    cat "$root/bench/virtio-io-scenarios.sh"
} >"$scenarios"
cp "$root/bench/virtio-io-host.sh" "$tmp/virtio-io-host.sh"

status=0
"$root/scripts/lab/run.sh" --scenarios "$scenarios" --log "$log" --timeout "$limit" \
    --guest-initrd "$work/virtio-io-guest.cpio.gz" --add "$tmp/virtio-io-host.sh" --add "$tmp/tcpblast" "${run_args[@]}" || status=$?

report "$log"
exit "$status"
