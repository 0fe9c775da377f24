#!/usr/bin/env bash
# Boot time of a stock Linux guest under our VMM and under QEMU microvm, side by side in ONE nested-lab run
# (everything there is 10-50x slower than native, so only the ratios mean something).
#
#   bench/lab-boot.sh [--vmm <stratovirt binary>] [--repeat <n>] [--log <file>] [--timeout <s>]
#   bench/lab-boot.sh --report <log>      only prints the table of an earlier run's log
#
# --vmm defaults to $STRATOVIRT_BINARY, then out/stratovirt; without one, or when it fails, QEMU runs alone.
# Prints per VMM and vCPU count: the outer wall time from starting the VMM to the guest's GUEST-INIT line, the
# guest's own uptime at that point, the boot timer our VMM logs, and the ratios ours/QEMU.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
    echo "usage: $0 [--vmm <binary>] [--repeat <n>] [--log <file>] [--timeout <s>] | --report <log>" >&2
    exit 2
}
vmm="${STRATOVIRT_BINARY:-$root/out/stratovirt}"
repeat=2
log="$root/.cache/lab/bench/lab-boot.log"
limit=1500
report_only=''
while (($#)); do
    case "$1" in
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --repeat) (($# >= 2)) || usage; repeat=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --timeout) (($# >= 2)) || usage; limit=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        *) usage ;;
    esac
done
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat wants a positive number, not '$repeat'" >&2; exit 2; }

# Prints the table from a lab log of these scenarios.
report() {  # report <log>
    echo
    echo "Boot to the guest's init in the nested lab (log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ))"
    tr -d '\r' <"$1" | awk -f "$root/bench/lab-boot-report.awk"
}

lab_comparison_setup "$report_only" "$vmm"

mkdir -p "$root/.cache/lab/bench" "$(dirname "$log")"
scenarios="$root/.cache/lab/bench/scenarios.sh"
{
    echo "BENCH_REPEAT=$repeat"
    echo "BENCH_OURS_TIMEOUT=180"
    cat "$root/bench/lab-boot-scenarios.sh"
} >"$scenarios"

status=0
"$root/scripts/lab/run.sh" --scenarios "$scenarios" --log "$log" --timeout "$limit" "${run_args[@]}" || status=$?

report "$log"
exit "$status"
