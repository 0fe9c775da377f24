#!/usr/bin/env bash
# Boot time and idle memory overhead of a stock Linux guest under our VMM and under QEMU, on the same machine type
# (microvm or q35), side by side in ONE nested-lab run (everything there is 10-50x slower than native, so only the
# ratios mean something).
#
#   bench/lab-boot.sh [--machine microvm|q35] [--vmm <stratovirt binary>] [--repeat <n>] [--log <file>] [--timeout <s>]
#   bench/lab-boot.sh --report <log>      only prints the table of an earlier run's log
#
# --machine defaults to microvm. --vmm defaults to $STRATOVIRT_BINARY, then out/stratovirt; without one, or when it
# fails, QEMU runs alone. Prints per VMM and vCPU count: the outer wall time from starting the VMM to the guest's
# GUEST-INIT line, the guest's own uptime at that point, the boot timer our VMM logs, and the ratios ours/QEMU; then
# the memory overhead of an idle VM of each (1 vCPU, at its shell prompt; the Rss of mappings < 128 MiB, as
# bench/memory.sh counts it) and its ratio. On q35 it checks issue 15's targets: to GUEST-INIT <= 0.6x QEMU's and
# an overhead <= 6 MiB (PASS/FAIL).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
    echo "usage: $0 [--machine microvm|q35] [--vmm <binary>] [--repeat <n>] [--log <file>] [--timeout <s>]" \
        "| --report <log>" >&2
    exit 2
}
vmm="${STRATOVIRT_BINARY:-$root/out/stratovirt}"
repeat=2
machine=microvm
log=''
limit=1500
report_only=''
while (($#)); do
    case "$1" in
        --machine) (($# >= 2)) || usage; machine=$2; shift 2 ;;
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --repeat) (($# >= 2)) || usage; repeat=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --timeout) (($# >= 2)) || usage; limit=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        *) usage ;;
    esac
done
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat wants a positive number, not '$repeat'" >&2; exit 2; }
[[ "$machine" == microvm || "$machine" == q35 ]] || { echo "bench: --machine is microvm or q35, not '$machine'" >&2; exit 2; }
if [[ -z "$log" ]]; then
    if [[ "$machine" == microvm ]]; then log="$root/.cache/lab/bench/lab-boot.log"; else log="$root/.cache/lab/bench/lab-boot-$machine.log"; fi
fi

# Prints the table from a lab log of these scenarios.
report() {  # report <log>
    echo
    echo "Boot to the guest's init and idle memory in the nested lab (log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ))"
    tr -d '\r' <"$1" | awk -f "$root/bench/lab-boot-report.awk"
}

lab_comparison_setup "$report_only" "$vmm"

mkdir -p "$root/.cache/lab/bench" "$(dirname "$log")"
scenarios="$root/.cache/lab/bench/scenarios.sh"
{
    echo "BENCH_REPEAT=$repeat"
    echo "BENCH_OURS_TIMEOUT=180"
    echo "BENCH_MACHINE=$machine"
    sed -n '/^smaps_summary() {$/,/^}$/p' "$root/bench/lib.sh"
    cat "$root/bench/lab-boot-scenarios.sh"
} >"$scenarios"

status=0
"$root/scripts/lab/run.sh" --scenarios "$scenarios" --log "$log" --timeout "$limit" "${run_args[@]}" || status=$?

report "$log"
exit "$status"
