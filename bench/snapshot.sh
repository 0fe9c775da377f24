#!/usr/bin/env bash
# Restore from a snapshot against a cold boot of the same guest, under our VMM in ONE nested-lab run (everything
# there is 10-50x slower than native: read the ratios). See bench/snapshot-scenarios.sh for what is timed.
#
#   bench/snapshot.sh [--vmm <stratovirt binary>] [--repeat <n>] [--log <file>]
#   bench/snapshot.sh --report <log>      only prints the table of an earlier run's log
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
    echo "usage: $0 [--vmm <binary>] [--repeat <n>] [--log <file>] | --report <log>" >&2
    exit 2
}
vmm="${STRATOVIRT_BINARY:-$root/out/stratovirt}"
repeat=3
log="$root/.cache/lab/bench/snapshot.log"
report_only=''
while (($#)); do
    case "$1" in
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --repeat) (($# >= 2)) || usage; repeat=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        *) usage ;;
    esac
done
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat wants a positive number, not '$repeat'" >&2; exit 2; }

# The table: per memory size, the median of each timing and the cold boot's multiple of it.
report() {  # report <log>
    echo
    echo "Snapshot and restore in the nested lab (log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ)); ms from exec to the guest's answer on its console"
    tr -d '\r' <"$1" | sed -n 's/^BENCH-SNAP-FILE \([0-9]*\) /memory file of the \1 MiB guest: /p'
    tr -d '\r' <"$1" | awk '
        $1 == "BENCH-SNAP" && $4 ~ /^[0-9]+$/ { n = ++count[$2 " " $3]; v[$2 " " $3, n] = $4; mem[$2] = 1 }
        $1 == "BENCH-SNAP" && $4 == "failed" { failed[$2 " " $3]++ }
        function median(key,    n, i, j, t, a) {
            n = count[key]; if (n == 0) return -1
            for (i = 1; i <= n; i++) a[i] = v[key, i]
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        END {
            printf "%-8s %-16s %8s %6s %12s\n", "MiB", "what", "median", "runs", "cold/this"
            for (m in mem) {
                cold = median(m " cold")
                split("cold snapshot restore-mapped restore-read-in", whats, " ")
                for (w = 1; w <= 4; w++) {
                    key = m " " whats[w]; med = median(key)
                    if (med < 0) { printf "%-8s %-16s %8s %6d\n", m, whats[w], "-", failed[key]; continue }
                    ratio = (whats[w] ~ /^restore/ && med > 0) ? sprintf("%.1fx", cold / med) : ""
                    printf "%-8s %-16s %8d %6d %12s%s\n", m, whats[w], med, count[key], ratio, failed[key] ? " (" failed[key] " failed)" : ""
                }
            }
        }'
}

if [[ -n "$report_only" ]]; then
    [[ -f "$report_only" ]] || { echo "bench: no log $report_only" >&2; exit 2; }
    report "$report_only"
    exit 0
fi
[[ -x "$vmm" ]] || { echo "bench: no VMM binary at $vmm (build it with scripts/build.sh)" >&2; exit 2; }

mkdir -p "$root/.cache/lab/bench" "$(dirname "$log")"
scenarios="$root/.cache/lab/bench/snapshot-scenarios.sh"
{
    echo "BENCH_REPEAT=$repeat"
    cat "$root/bench/snapshot-scenarios.sh"
} >"$scenarios"

status=0
"$root/scripts/lab/run.sh" --scenarios "$scenarios" --log "$log" --timeout 2400 --vmm "$vmm" || status=$?

report "$log"
exit "$status"
