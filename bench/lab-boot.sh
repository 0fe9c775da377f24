#!/usr/bin/env bash
# Boot time and idle memory overhead of a stock Linux guest under our VMM and under QEMU, on the same machine type
# (microvm or q35), side by side in ONE nested-lab run (everything there is 10-50x slower than native, so only the
# ratios mean something).
#
#   bench/lab-boot.sh [--machine microvm|q35] [--vmm <stratovirt binary>] [--repeat <n>] [--log <file>] [--timeout <s>]
#   bench/lab-boot.sh --report <log>      only prints the table of an earlier run's log
#   bench/lab-boot.sh --arch arm64 ...    the Arm lab (bench/arm-boot.sh): our arm64 microvm against QEMU's virt
#
# --machine defaults to microvm. --vmm defaults to $STRATOVIRT_BINARY, then out/stratovirt; without one, or when it
# fails, QEMU runs alone. Prints per VMM and vCPU count: the outer wall time from starting the VMM to the guest's
# GUEST-INIT line, the guest's own uptime at that point, the boot timer our VMM logs, and the ratios ours/QEMU; then
# the memory overhead of an idle VM of each (1 vCPU, at its shell prompt; the Rss of mappings < 128 MiB, as
# bench/memory.sh counts it) and its ratio. On q35 it checks issue 15's targets: to GUEST-INIT <= 0.6x QEMU's and
# an overhead <= 6 MiB (PASS/FAIL).
#
# --arch arm64 runs in the Arm nested lab (scripts/lab/arm/run.sh --with-qemu): Debian's arm64 Image and the Arm lab's
# guest initramfs, console=ttyAMA0, our out/aarch64/stratovirt (-machine microvm; --machine q35 is refused) against
# Debian's arm64 QEMU with -M virt,gic-version=3 -enable-kvm -cpu host -nodefaults, direct kernel boot; it checks
# issue 17's target, to GUEST-INIT <= 0.6x QEMU's, and reports the idle overheads.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
    echo "usage: $0 [--arch x86_64|arm64] [--machine microvm|q35] [--vmm <binary>] [--repeat <n>] [--log <file>]" \
        "[--timeout <s>] | --report <log>" >&2
    exit 2
}
vmm=''
arch=x86_64
repeat=2
machine=microvm
log=''
limit=1500
report_only=''
while (($#)); do
    case "$1" in
        --arch) (($# >= 2)) || usage; arch=$2; shift 2 ;;
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
[[ "$arch" == x86_64 || "$arch" == arm64 ]] || { echo "bench: --arch is x86_64 or arm64, not '$arch'" >&2; exit 2; }
[[ "$arch" == x86_64 || "$machine" == microvm ]] || { echo "bench: arm64 has no --machine $machine" >&2; exit 2; }
if [[ "$arch" == arm64 ]]; then
    vmm=${vmm:-$root/out/aarch64/stratovirt}
    console=ttyAMA0 qemu_machine=virt,gic-version=3 bench_dir="$root/.cache/lab-arm/bench"
    lab_run="$root/scripts/lab/arm/run.sh"
    default_log=$bench_dir/arm-boot.log
else
    vmm=${vmm:-${STRATOVIRT_BINARY:-$root/out/stratovirt}}
    console=ttyS0 qemu_machine='' bench_dir="$root/.cache/lab/bench"
    lab_run="$root/scripts/lab/run.sh"
    default_log=$bench_dir/lab-boot.log
    [[ "$machine" == microvm ]] || default_log=$bench_dir/lab-boot-$machine.log
fi
log=${log:-$default_log}

# Prints the table from a lab log of these scenarios.
report() {  # report <log>
    echo
    echo "Boot to the guest's init and idle memory in the nested lab (log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ))"
    tr -d '\r' <"$1" | awk -f "$root/bench/lab-boot-report.awk"
}

# The Arm lab cannot run without our binary (run.sh needs one): a missing one is an error there.
[[ -n "$report_only" || "$arch" == x86_64 || -x "$vmm" ]] || \
    { echo "bench: no arm64 VMM at $vmm (scripts/build.sh --arch arm64)" >&2; exit 2; }
lab_comparison_setup "$report_only" "$vmm"

mkdir -p "$bench_dir" "$(dirname "$log")"
scenarios="$bench_dir/scenarios.sh"
{
    echo "BENCH_REPEAT=$repeat"
    echo "BENCH_OURS_TIMEOUT=180"
    echo "BENCH_MACHINE=$machine"
    echo "BENCH_CONSOLE=$console"
    [[ -z "$qemu_machine" ]] || echo "BENCH_QEMU_MACHINE=$qemu_machine"
    sed -n '/^smaps_summary() {$/,/^}$/p' "$root/bench/lib.sh"
    cat "$root/bench/lab-boot-scenarios.sh"
} >"$scenarios"

status=0
"$lab_run" --scenarios "$scenarios" --log "$log" --timeout "$limit" "${run_args[@]}" || status=$?

report "$log"
exit "$status"
