#!/usr/bin/env bash
# Two builds of our VMM side by side in ONE nested-lab run: the same Debian kernel and initramfs booted to init by
# each, alternating run by run (base, then new), on each machine type asked for, 1 vCPU, 256 MiB,
# console=ttyS0. For a change whose effect on boot is smaller than the lab's spread between runs (its host load
# drifts over minutes), pairs booted back to back compare better than two separate lab runs.
#
#   bench/lab-ab.sh --base <stratovirt binary> [--vmm <stratovirt binary>] [--repeat <n>] [--machines "q35 microvm"]
#                   [--log <file>] [--timeout <s>]
#   bench/lab-ab.sh --report <log>      only prints the table of an earlier run's log
#
# --vmm defaults to out/stratovirt, --repeat to 4, --machines to "q35 microvm". Prints per boot: the outer wall time
# from starting the VMM to the guest's GUEST-INIT line, the kernel's kvm-clock offset at its clock set-up (the time
# from VM creation through the decompressor, in guest ns), the console replay (guest time from "Console: colour
# dummy device" to "printk: console [ttyS0] enabled": the kernel printing everything it logged before its serial
# console existed, which is mostly serial port exits) and the "Run /init" timestamp; then per machine the medians
# of base and new and their ratio new/base, and each back-to-back pair's console replay ratio.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
    echo "usage: $0 --base <binary> [--vmm <binary>] [--repeat <n>] [--machines \"q35 microvm\"] [--log <file>]" \
        "[--timeout <s>] | --report <log>" >&2
    exit 2
}
base='' vmm=$root/out/stratovirt repeat=4 machines='q35 microvm' log=$root/.cache/lab/bench/lab-ab.log limit=1500
report_only=''
while (($#)); do
    case "$1" in
        --base) (($# >= 2)) || usage; base=$2; shift 2 ;;
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --repeat) (($# >= 2)) || usage; repeat=$2; shift 2 ;;
        --machines) (($# >= 2)) || usage; machines=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --timeout) (($# >= 2)) || usage; limit=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        *) usage ;;
    esac
done

report() {  # report <log>
    echo
    echo "Base against new build in one nested-lab run (log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ))"
    tr -d '\r' <"$1" | awk '
        function median(list,   n, a, i, j, t) {
            n = split(list, a, " ")
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n == 0 ? 0 : (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
        }
        /^@@BEGIN / {
            name = $2; split(name, p, "-"); build = p[1]; machine = p[2]; rep = substr(p[3], 2) + 0
            if (rep > reps) reps = rep
            colour = enabled = run = offset = ""; next
        }
        /kvm-clock: using sched offset of/ { offset = $(NF - 1) / 1e9 }
        /Console: colour dummy device/ { colour = substr($0, 2, 12) + 0 }
        /printk: console \[ttyS0\] enabled/ { enabled = substr($0, 2, 12) + 0 }
        /Run \/init as init process/ { run = substr($0, 2, 12) + 0 }
        /^@@INIT / {
            split($3, ms, "=")
            replay = (colour != "" && enabled != "") ? enabled - colour : -1
            printf "%-22s to GUEST-INIT %6.2f s  kvm-clock offset %5.2f s  console replay %5.2f s  Run /init %6.2f s\n",
                name, ms[2] / 1000, offset, replay, run
            key = build SUBSEP machine
            inits[key] = inits[key] " " ms[2] / 1000; runs[key] = runs[key] " " run
            if (replay >= 0) { replays[key] = replays[key] " " replay; r[build, machine, rep] = replay }
            if (!(machine in seen)) { seen[machine] = 1; order[++machines] = machine }
        }
        END {
            for (i = 1; i <= machines; i++) {
                m = order[i]; b = "base" SUBSEP m; n = "new" SUBSEP m
                printf "\n%s: medians base / new (new/base): to GUEST-INIT %.2f / %.2f s (%.2fx), console replay %.2f / %.2f s (%.2fx), Run /init %.2f / %.2f s (%.2fx)\n",
                    m, median(inits[b]), median(inits[n]), median(inits[n]) / median(inits[b]),
                    median(replays[b]), median(replays[n]), median(replays[n]) / median(replays[b]),
                    median(runs[b]), median(runs[n]), median(runs[n]) / median(runs[b])
                pairs = ""; better = 0; count = 0
                for (k = 1; k <= reps; k++) {
                    if (!(("base", m, k) in r) || !(("new", m, k) in r)) continue
                    q = r["new", m, k] / r["base", m, k]
                    pairs = pairs sprintf(" %.2f", q); count++; if (q < 1) better++
                }
                printf "%s: console replay new/base per pair:%s (%d of %d pairs faster)\n", m, pairs, better, count
            }
        }'
}

if [[ -n "$report_only" ]]; then
    [[ -f "$report_only" ]] || { echo "bench: no log $report_only" >&2; exit 2; }
    report "$report_only"
    exit 0
fi
[[ -x "$base" ]] || { echo "bench: --base wants our VMM binary to compare against, not '$base'" >&2; exit 2; }
[[ -x "$vmm" ]] || { echo "bench: no VMM at $vmm (scripts/build.sh)" >&2; exit 2; }
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat wants a positive number, not '$repeat'" >&2; exit 2; }
for m in $machines; do
    [[ "$m" == q35 || "$m" == microvm ]] || { echo "bench: --machines holds q35 and microvm, not '$m'" >&2; exit 2; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$base" "$stage/stratovirt-base" # the lab puts it at /lab/stratovirt-base; the new build is $VMM
{
    echo "AB_REPEAT=$repeat"
    echo "AB_MACHINES='$machines'"
    cat <<'SCENARIOS'
# Scenarios of bench/lab-ab.sh: <base|new>-<machine>-r<n>, exec'd so that the VMM keeps the caller's pid.
ab_boot() {  # ab_boot <binary> <machine>
    exec env STRATOVIRT_LOG_LEVEL=info "$1" -machine "$2" -kernel "$KERNEL" -initrd "$INITRD" \
        -append "console=ttyS0 reboot=k panic=1 lab.action=poweroff" -m 256 -smp 1 -serial stdio -D
}
rep=1
while [ "$rep" -le "$AB_REPEAT" ]; do
    for m in $AB_MACHINES; do
        scenario "base-$m-r$rep" 180 ab_boot /lab/stratovirt-base "$m"
        scenario "new-$m-r$rep" 180 ab_boot "$VMM" "$m"
    done
    rep=$((rep + 1))
done
SCENARIOS
} >"$stage/scenarios.sh"
mkdir -p "$(dirname "$log")"
status=0
"$root/scripts/lab/run.sh" --scenarios "$stage/scenarios.sh" --log "$log" --timeout "$limit" --vmm "$vmm" \
    --add "$stage/stratovirt-base" || status=$?
report "$log"
exit "$status"
