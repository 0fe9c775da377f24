#!/usr/bin/env bash
# Snapshot and restore under our VMM against QEMU microvm's migration to a file, and against a cold boot of the same
# guest, in ONE nested-lab run (everything there is 10-50x slower than native: read the ratios); then the memory of
# VMs restored from one snapshot against as many cold-booted ones. See bench/snapshot-scenarios.sh for what is timed.
#
#   bench/snapshot.sh [--vmm <stratovirt binary>] [--repeat <n>] [--sizes "<MiB> ..."] [--density <n>]
#                     [--density-mem <MiB>] [--timeout <s>] [--log <file>]
#   bench/snapshot.sh --report <log>      only prints the tables of an earlier run's log
#
# Defaults: --repeat 2, --sizes "128 1024 4096", --density 10 (0 leaves it out) of --density-mem 256 MiB guests,
# --timeout 1500. A 4096 MiB guest fits the lab's outer VM (6 GiB): only what the guest touches is resident.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
    echo "usage: $0 [--vmm <binary>] [--repeat <n>] [--sizes \"<MiB> ...\"] [--density <n>] [--density-mem <MiB>]" \
        "[--timeout <s>] [--log <file>] | --report <log>" >&2
    exit 2
}
vmm="${STRATOVIRT_BINARY:-$root/out/stratovirt}"
repeat=2 sizes="128 1024 4096" density=10 density_mem=256 limit=1500
log="$root/.cache/lab/bench/snapshot.log"
report_only=''
while (($#)); do
    case "$1" in
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --repeat) (($# >= 2)) || usage; repeat=$2; shift 2 ;;
        --sizes) (($# >= 2)) || usage; sizes=$2; shift 2 ;;
        --density) (($# >= 2)) || usage; density=$2; shift 2 ;;
        --density-mem) (($# >= 2)) || usage; density_mem=$2; shift 2 ;;
        --timeout) (($# >= 2)) || usage; limit=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        *) usage ;;
    esac
done
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat wants a positive number, not '$repeat'" >&2; exit 2; }
[[ "$sizes" =~ ^[0-9]+( [0-9]+)*$ ]] || { echo "bench: --sizes wants MiB numbers, not '$sizes'" >&2; exit 2; }
[[ "$density" =~ ^[0-9]+$ ]] || { echo "bench: --density wants a number, not '$density'" >&2; exit 2; }
[[ "$density_mem" =~ ^[0-9]+$ ]] || { echo "bench: --density-mem wants MiB, not '$density_mem'" >&2; exit 2; }
[[ "$limit" =~ ^[0-9]+$ ]] || { echo "bench: --timeout wants seconds, not '$limit'" >&2; exit 2; }

# The tables: per memory size the median of each timing, ours against QEMU, and the density sums.
report() {  # report <log>
    echo
    echo "Snapshot and restore in the nested lab (log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ)); ms from exec to the guest's"
    echo "answer on its console (snapshot: from after stop to the file written); entry: ours, exec to vCPU 0's first KVM_RUN"
    tr -d '\r' <"$1" | awk '
        $1 == "BENCH-SNAP-FILE" && $8 == "(snapshot)" { printf "memory file, %s at %s MiB: %s KiB on disk\n", $2, $3, $4 }'
    tr -d '\r' <"$1" | awk '
        $1 == "BENCH-SNAP" && $4 == "template" { next }
        $1 == "BENCH-SNAP" && $5 ~ /^[0-9]+$/ {
            key = $2 " " $3 " " $4; n = ++count[key]; v[key, n] = $5; mem[$3] = 1
            for (i = 6; i <= NF; i++) if ($i ~ /^entry_ms=/) { e = ++ecount[key]; ev[key, e] = substr($i, 10) }
            for (i = 6; i <= NF; i++) if ($i ~ /^answered=/ && substr($i, 10) > 1) retyped[key]++
        }
        $1 == "BENCH-SNAP" && $5 == "failed" { failed[$2 " " $3 " " $4]++; mem[$3] = 1 }
        function median(arr, cnt, key,    n, i, j, t, a) {
            n = cnt[key]; if (n == 0) return -1
            for (i = 1; i <= n; i++) a[i] = arr[key, i]
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function cell(key,    m) {
            m = median(v, count, key)
            if (m < 0) return sprintf("%10s", failed[key] ? "failed" : "-")
            return sprintf("%10d", m)
        }
        END {
            nm = 0
            for (m in mem) sizes[++nm] = m + 0
            for (i = 1; i <= nm; i++) for (j = i + 1; j <= nm; j++) if (sizes[j] < sizes[i]) { t = sizes[i]; sizes[i] = sizes[j]; sizes[j] = t }
            printf "%-6s %-16s %10s %10s %10s %9s %10s %10s %5s %s\n", "MiB", "ours", "ours ms", "QEMU ms", "ours/QEMU", "entry ms", \
                "cold/this", "QEMU c/t", "runs", "notes"
            split("cold snapshot restore-mapped restore-read-in", ours, " ")
            split("cold snapshot restore restore", peer, " ")
            for (i = 1; i <= nm; i++) {
                m = sizes[i]
                for (w = 1; w <= 4; w++) {
                    ko = "ours " m " " ours[w]; kq = "qemu " m " " peer[w]
                    mo = median(v, count, ko); mq = median(v, count, kq); me = median(ev, ecount, ko)
                    mc = median(v, count, "ours " m " cold"); mqc = median(v, count, "qemu " m " cold")
                    ratio = (mo >= 0 && mq > 0) ? sprintf("%.2fx", mo / mq) : "-"
                    coldr = (w > 2 && mo > 0 && mc > 0) ? sprintf("%.1fx", mc / mo) : ""
                    coldq = (w > 2 && mq > 0 && mqc > 0) ? sprintf("%.1fx", mqc / mq) : ""
                    note = ""
                    if (failed[ko]) note = note failed[ko] " ours failed; "
                    if (failed[kq]) note = note failed[kq] " QEMU failed; "
                    if (retyped[ko]) note = note retyped[ko] " ours lost a line; "
                    if (retyped[kq]) note = note retyped[kq] " QEMU lost a line; "
                    printf "%-6s %-16s %s %s %10s %9s %10s %10s %2d/%-2d %s\n", m, ours[w], cell(ko), cell(kq), ratio, \
                        (me >= 0 ? me : "-"), coldr, coldq, count[ko], count[kq], note
                }
            }
        }'
    tr -d '\r' <"$1" | awk '
        $1 == "BENCH-DENSITY" { for (i = 3; i <= NF; i++) { split($i, kv, "="); d[$2, kv[1]] = kv[2] }; seen[$2] = 1 }
        $1 == "BENCH-DENSITY-FILE" { file = $2 }
        END {
            if (!seen["cold"]) exit
            printf "\nTemplate density (ours): %d VMs idle at their shell, Pss and Rss summed over the VMMs\n", d["cold", "of"]
            for (k = 1; k <= 2; k++) {
                l = k == 1 ? "cold" : "restored"
                if (seen[l]) printf "%-9s %2d answered  Pss %8d KiB  Rss %8d KiB\n", l, d[l, "vms"], d[l, "pss_kb"], d[l, "rss_kb"]
            }
            if (seen["restored"] && d["cold", "pss_kb"] > 0)
                printf "restored/cold Pss %.2fx; the snapshot memory file holds %s KiB of page cache besides\n", \
                    d["restored", "pss_kb"] / d["cold", "pss_kb"], file
        }'
}

# With --report only the tables; otherwise run_args: QEMU, and our VMM when the binary exists.
lab_comparison_setup "$report_only" "$vmm"

mkdir -p "$root/.cache/lab/bench" "$(dirname "$log")"
scenarios="$root/.cache/lab/bench/snapshot-scenarios.sh"
{
    echo "BENCH_REPEAT=$repeat"
    echo "BENCH_SIZES='$sizes'"
    echo "BENCH_DENSITY=$density"
    echo "BENCH_DENSITY_MEM=$density_mem"
    cat "$root/bench/snapshot-scenarios.sh"
} >"$scenarios"

status=0
"$root/scripts/lab/run.sh" --scenarios "$scenarios" --log "$log" --timeout "$limit" "${run_args[@]}" || status=$?

report "$log"
exit "$status"
