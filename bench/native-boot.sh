#!/usr/bin/env bash
# Boot-time benchmark: exec -> first boot-timer exit, our VMM against the C floor.
#
#   bench/native-boot.sh [--native | --lab] [vmm] [label=vmm ...]   (default vmm: out/stratovirt)
#   env: N=20 runs per variant after WARMUP=3 warm-ups; PAYLOAD=hello (or idle:
#   a payload that does not reset is stopped after its boot-timer line)
#
# Each run is `launch <program> ...`: launch records CLOCK_MONOTONIC, puts it in
# BENCH_T0_NS and execs the program; the program's boot-timer line carries the
# monotonic time of the guest's boot-timer write. Time = that - BENCH_T0_NS.
# The same line carries the process's CPU time (user + sys) at that moment:
# the CPU a VMM spends from exec to the guest's first instructions.
# Variants: the floor (bench/floor/kvm-floor.c) and our VMM, each with the
# payload as a raw vmlinux.bin and as a bzImage, and each label=vmm (another
# build of ours) the same way. Prints min/median wall ms, median CPU ms and the
# ratios to the floor (targets: CPU <= 2.5x, wall <= 2x), plus hyperfine
# whole-process times when hyperfine is there.
#
# Without a usable /dev/kvm (or with --lab) the measurement runs inside the
# nested lab (scripts/lab/run.sh), where everything is 10-50x slower: read the
# ratios there, not the absolute times.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." 2>/dev/null && pwd)
# In the lab the script runs from /lab, where bench/lib.sh is staged as bench-lib.sh (/lab/lib.sh is the lab's).
if [ -f "$(dirname "$0")/bench-lib.sh" ]; then source "$(dirname "$0")/bench-lib.sh"; else source "$root/bench/lib.sh"; fi
parse_bench_options native-boot '2,21p' "$@"
set -- "${bench_args[@]}"
N=${N:-20}
WARMUP=${WARMUP:-3}
PAYLOAD=${PAYLOAD:-hello}

if [ "$mode" = inner ]; then
    # Inside the lab: everything is in the current directory.
    root=$PWD
    bin=$PWD
    vmm=${1:-}
    shift || true
    others=("$@")
else
    vmm=${1:-$root/out/stratovirt}
    case $vmm in /*) ;; *) vmm=$PWD/$vmm ;; esac
    shift || true
    parse_variants native-boot "$@"
    echo "native-boot: building the floor and the payloads into .cache/bench" >&2
    build_inputs
    bin=$(bench_dir)
    ensure_tool hyperfine hyperfine optional || true
    choose_mode native-boot "measuring inside the nested lab (absolute times are 10-50x native; compare ratios)"
    if [ "$mode" = lab ]; then
        if [ ! -x "$vmm" ]; then echo "native-boot: VMM $vmm not found: measuring the floor only" >&2; vmm=; fi
        extra=()
        command -v hyperfine >/dev/null 2>&1 && extra+=("$(command -v hyperfine)")
        stage_variants
        LAB_ENV="N=$N WARMUP=$WARMUP PAYLOAD=$PAYLOAD" stage_and_run_in_lab native-boot.sh "$vmm" "${extra[@]}"
        exit $?
    fi
    [ -c /dev/kvm ] || { echo "native-boot: $(why_no_kvm)" >&2; exit 1; }
fi
if [ -n "$vmm" ] && [ ! -x "$vmm" ]; then
    echo "native-boot: VMM $vmm not found: measuring the floor only" >&2
    vmm=
fi
[ -x ./hyperfine ] && PATH=$PWD:$PATH

if [ "$mode" = inner ]; then tmp=$(mktemp -d /tmp/native-boot.XXXXXX); else tmp=$(mktemp -d "$(bench_dir)/run.XXXXXX"); fi
cur=
watchdog_pid=
keeper_pid=
if [ "$mode" = inner ]; then start_keeper; start_watchdog 60; fi
cleanup() {
    trap '' INT TERM   # a second signal must not cut the cleanup short
    if [ -n "$keeper_pid" ]; then kill -9 "$keeper_pid" 2>/dev/null || true; fi
    if [ -n "$watchdog_pid" ]; then kill "$watchdog_pid" 2>/dev/null || true; fi
    if [ -n "$cur" ] && kill -0 "$cur" 2>/dev/null; then kill -9 "$cur" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

limit=20
[ "$mode" = inner ] && limit=120

# one_run <cmd...>: run once under launch; print "<exec->boot-timer ms> <CPU ms>", or "fail".
one_run() {
    local rc=0
    timeout "$limit" "$bin/launch" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null &
    cur=$!
    if [ "$PAYLOAD" != hello ]; then
        # A payload that does not reset keeps the VMM alive: stop it after its boot-timer line.
        while kill -0 "$cur" 2>/dev/null && ! grep -q 'Guest-boot-time' "$tmp/err"; do sleep 0.05; done
        kill -9 "$cur" 2>/dev/null || true
    fi
    wait "$cur" || rc=$?
    cur=
    local t0 t1
    t0=$(sed -n 's/^BENCH_T0_NS=\([0-9]*\)$/\1/p' "$tmp/err" | head -1)
    t1=$(sed -n 's/.*Guest-boot-time = .*(monotonic \([0-9]*\) ns).*/\1/p' "$tmp/err" | head -1)
    cpu=$(sed -n 's/.*Guest-boot-time = .* \([0-9]*\) CPU us .*/\1/p' "$tmp/err" | head -1)
    if [ -z "$t0" ] || [ -z "$t1" ] || [ -z "$cpu" ]; then
        echo "fail (exit $rc)"
        return
    fi
    awk -v a="$t0" -v b="$t1" -v c="$cpu" 'BEGIN { printf "%.3f %.3f\n", (b - a) / 1e6, c / 1e3 }'
}

declare -A med cpu_med
# variant <label> <key> <cmd...>; keys ours-* and <label>-* are compared with floor-*.
variant() {
    local label=$1 key=$2
    shift 2
    local i r times=() cpus=()
    for ((i = 0; i < WARMUP + N; i++)); do
        r=$(one_run "$@")
        case $r in
            fail*)
                printf '%-28s FAILED (%s); stderr:\n' "$label" "$r"
                sed 's/^/    /' "$tmp/err" | tail -5
                return 0 ;;
        esac
        if [ "$i" -ge "$WARMUP" ]; then times+=("${r% *}"); cpus+=("${r#* }"); fi
    done
    local mm cm
    mm=$(printf '%s\n' "${times[@]}" | min_median)
    cm=$(printf '%s\n' "${cpus[@]}" | min_median)
    med[$key]=${mm#* }
    cpu_med[$key]=${cm#* }
    printf '%-28s n=%-3d wall min %8s median %8s ms, CPU median %7s ms' "$label" "$N" "${mm% *}" "${mm#* }" "${cm#* }"
    case $key in
        floor-*) ;;
        *)
            local f=${med[floor-${key##*-}]:-} fc=${cpu_med[floor-${key##*-}]:-}
            if [ -n "$f" ]; then
                awk -v o="${mm#* }" -v f="$f" -v oc="${cm#* }" -v fc="$fc" 'BEGIN {
                    r = o / f; rc = oc / fc
                    printf "  /floor: CPU %.2fx (<= 2.5x: %s), wall %.2fx (<= 2x: %s)", rc, (rc <= 2.5 ? "PASS" : "FAIL"), r, (r <= 2 ? "PASS" : "FAIL") }'
            fi ;;
    esac
    echo
}

ours() {  # ours <vmm> <kernel>: our VMM's command line
    echo "$1" -machine microvm -kernel "$2" -m 256 -smp 1 -serial stdio -D
}

export STRATOVIRT_LOG_LEVEL=info   # our VMM logs the boot-timer line at info level
echo "native-boot: exec -> first boot-timer exit, payload '$PAYLOAD', $WARMUP warm-ups + $N runs each ($mode)"
variant "floor $PAYLOAD.bin" floor-bin "$bin/kvm-floor" -c "$bin/$PAYLOAD.bin"
variant "floor $PAYLOAD.bzImage" floor-bz "$bin/kvm-floor" -c "$bin/$PAYLOAD.bzImage"
if [ -n "$vmm" ]; then
    # shellcheck disable=SC2046
    variant "ours $PAYLOAD.bin (vmlinux.bin)" ours-bin $(ours "$vmm" "$bin/$PAYLOAD.bin")
    # shellcheck disable=SC2046
    variant "ours $PAYLOAD.bzImage" ours-bz $(ours "$vmm" "$bin/$PAYLOAD.bzImage")
fi
for o in "${others[@]}"; do
    # shellcheck disable=SC2046
    variant "${o%%=*} $PAYLOAD.bin" "${o%%=*}-bin" $(ours "${o#*=}" "$bin/$PAYLOAD.bin")
    # shellcheck disable=SC2046
    variant "${o%%=*} $PAYLOAD.bzImage" "${o%%=*}-bz" $(ours "${o#*=}" "$bin/$PAYLOAD.bzImage")
done

if command -v hyperfine >/dev/null 2>&1 && [ "$PAYLOAD" = hello ]; then
    echo "native-boot: whole process (hyperfine -N -w $WARMUP -r $N; hello resets, so the process ends by itself)"
    cmds=("$bin/kvm-floor -c $bin/hello.bin")
    [ -n "$vmm" ] && cmds+=("$vmm -machine microvm -kernel $bin/hello.bin -m 256 -smp 1 -serial stdio")
    if hyperfine -N -w "$WARMUP" -r "$N" --export-json "$tmp/hf.json" --output=null "${cmds[@]}" >"$tmp/hf.txt" 2>&1; then
        awk '/"command":/ { c = $0; sub(/.*"command": "/, "", c); sub(/",$/, "", c) }
             /"median":/ { m = $2; sub(/,/, "", m) }
             /"min":/ { n = $2; sub(/,/, "", n); printf "%-28s min %8.3f ms  median %8.3f ms\n", (c ~ /kvm-floor/ ? "floor (whole process)" : "ours (whole process)"), n * 1000, m * 1000 }' "$tmp/hf.json"
    else
        echo "native-boot: hyperfine failed:"; tail -5 "$tmp/hf.txt"
    fi
fi
