#!/usr/bin/env bash
# Crash durability in the nested lab: per drive configuration (direct=on, direct=off, direct=on with an iothread),
# <trials> VMs whose guest writes numbered, checksummed records with O_DIRECT and fdatasync and prints each one
# acknowledged, each VMM SIGKILLed at a random moment after its first acknowledgement, then every acknowledged record
# checked in the disk (scripts/lab/durability-trials.sh). Target: 0 records lost.
#
#   bench/durability.sh [--vmm <stratovirt binary>] [--trials <n per config>] [--configs "<c> ..."] [--log <file>]
#   bench/durability.sh --report <log>      only prints the table of an earlier run's log
#
# Defaults: 100 trials of each of direct-on, direct-off and iothread (a trial is one guest boot, 10-20 s in the lab).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
    echo "usage: $0 [--vmm <binary>] [--trials <n>] [--configs \"direct-on direct-off iothread\"] [--log <file>] | --report <log>" >&2
    exit 2
}
vmm="${STRATOVIRT_BINARY:-$root/out/stratovirt}"
trials=100 configs="direct-on direct-off iothread"
log="$root/.cache/lab/bench/durability.log"
report_only=''
while (($#)); do
    case "$1" in
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --trials) (($# >= 2)) || usage; trials=$2; shift 2 ;;
        --configs) (($# >= 2)) || usage; configs=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        *) usage ;;
    esac
done
[[ "$trials" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --trials wants a positive number, not '$trials'" >&2; exit 2; }

# The table of a lab log of these scenarios: per configuration, trials, records acknowledged and lost.
report() {  # report <log>
    echo
    echo "Crash durability in the nested lab (SIGKILL of the VMM at a random moment; log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ))"
    # failed: boots in which the guest acknowledged nothing (tried again; nothing was written in them)
    printf '%-12s %8s %8s %14s %13s\n' config trials failed acknowledged lost
    tr -d '\r' <"$1" | sed -n 's/^DUR-SUMMARY //p' | awk '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%-12s %8s %8s %14s %13s\n", v["config"], v["trials"], v["failed"], v["acked"], v["lost"]
    }'
    local lost
    lost=$(tr -d '\r' <"$1" | grep -c '^DUR-LOST' || true)
    echo "trials that lost records: $lost"
}

if [[ -n "$report_only" ]]; then
    [[ -f "$report_only" ]] || { echo "bench: no log $report_only" >&2; exit 2; }
    report "$report_only"
    exit 0
fi
[[ -x "$vmm" ]] || { echo "bench: no VMM binary at $vmm (build it with scripts/build.sh)" >&2; exit 2; }

mkdir -p "$root/.cache/lab/bench" "$(dirname "$log")"
scenarios="$root/.cache/lab/bench/durability-scenarios.sh"
for c in $configs; do
    # A trial takes up to about 3 minutes when a guest is slow to boot; most take well under 30 s.
    echo "scenario durability-$c $((trials * 180)) durability-trials $trials $c"
done >"$scenarios"
# Each configuration's scenario has its own timeout; the outer VM's covers them all.
limit=$(($(wc -w <<<"$configs") * trials * 180 + 600))

status=0
"$root/scripts/lab/run.sh" --scenarios "$scenarios" --log "$log" --timeout "$limit" --vmm "$vmm" >/dev/null || status=$?
report "$log"
tr -d '\r' <"$log" | grep -q '^DUR-LOST' && status=1
exit "$status"
