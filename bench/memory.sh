#!/usr/bin/env bash
# VMM memory overhead of an idle microVM, the way StratoVirt (hydropper) and
# Firecracker measure it: the Rss of every mapping of the process except guest
# RAM, where guest RAM is recognised by size.
#
#   bench/memory.sh [--native | --lab] [vmm] [label=vmm ...]   (default vmm: out/stratovirt)
#   env: R=3 runs per variant (the median is shown)
# Each label=vmm is another build of our VMM (another framework, other linker
# settings), measured like ours and compared with it (ratio label/ours).
#
# For each variant: start it with the `idle` payload (boot timer, then cli; hlt),
# wait for the boot-timer line, wait 1 s more, read /proc/<pid>/smaps:
#   overhead  = sum of Rss of mappings whose Size < 128 MiB (StratoVirt's rule)
#   big-other = Rss of mappings >= 128 MiB that are not guest RAM (a size near
#               -m): such a mapping would escape the rule above, so it is shown
#   guest     = Rss of the guest RAM mapping;  total = all Rss
# Variants: our VMM, the C floor (bench/floor/kvm-floor.c) and QEMU microvm,
# each with -m 256 and -m 1024. At -m 256 each build of ours also gets a
# breakdown of its overhead by mapping: the binary, libc, libm, the loader,
# the runtime's heap, anonymous mappings, stacks, and the largest anonymous ones. QEMU gets a payload bzImage; it may not run it
# properly, but its process stays alive and is measured 1 s (5 s in the lab) after its guest RAM is first touched.
# Then, at -m 256, ours and QEMU again with one virtio-blk (a raw image) and one
# virtio-net (a tap in a network namespace of the VM's own), with a breakdown of ours.
# Targets: our overhead <= 4 MiB at -m 256, <= 4.5 MiB with blk and net (PASS/FAIL
# is printed; exit status 0).
#
# Without a usable /dev/kvm (or with --lab) it runs inside the nested lab.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." 2>/dev/null && pwd)
# In the lab the script runs from /lab, where bench/lib.sh is staged as bench-lib.sh (/lab/lib.sh is the lab's).
if [ -f "$(dirname "$0")/bench-lib.sh" ]; then source "$(dirname "$0")/bench-lib.sh"; else source "$root/bench/lib.sh"; fi
parse_bench_options memory '2,23p' "$@"
set -- "${bench_args[@]}"
R=${R:-3}
TARGET_KB=$((4 * 1024))
TARGET_DEV_KB=$((4 * 1024 + 512))

if [ "$mode" = inner ]; then
    root=$PWD
    bin=$PWD
    vmm=${1:-}
    shift || true
    others=("$@")
    qemu=
    [ -x ./qemu-system-x86_64 ] && qemu=./qemu-system-x86_64
    qemu_args=(-L ./qemu-fw)
else
    vmm=${1:-$root/out/stratovirt}
    case $vmm in /*) ;; *) vmm=$PWD/$vmm ;; esac
    shift || true
    parse_variants memory "$@"
    echo "memory: building the floor and the payloads into .cache/bench" >&2
    build_inputs
    bin=$(bench_dir)
    ensure_tool qemu-system-x86_64 qemu-system-x86 optional || true
    qemu=$(command -v qemu-system-x86_64 || true)
    qemu_args=()
    choose_mode memory "measuring inside the nested lab"
    if [ "$mode" = lab ]; then
        if [ ! -x "$vmm" ]; then
            [ ${#others[@]} -eq 0 ] || { echo "memory: VMM $vmm not found, so the variants have nothing to be compared with" >&2; exit 2; }
            echo "memory: VMM $vmm not found: measuring the floor and QEMU only" >&2
            vmm=
        fi
        extra=()
        [ -n "$qemu" ] && extra+=("$qemu")  # the lab brings its own QEMU and firmware
        stage_variants
        LAB_ENV="R=$R" stage_and_run_in_lab memory.sh "$vmm" "${extra[@]}"
        exit $?
    fi
    [ -c /dev/kvm ] || { echo "memory: $(why_no_kvm)" >&2; exit 1; }
fi
if [ -n "$vmm" ] && [ ! -x "$vmm" ]; then
    echo "memory: VMM $vmm not found: measuring the floor and QEMU only" >&2
    vmm=
fi

if [ "$mode" = inner ]; then tmp=$(mktemp -d /tmp/memory.XXXXXX); else tmp=$(mktemp -d "$(bench_dir)/run.XXXXXX"); fi
cur=
watchdog_pid=
keeper_pid=
if [ "$mode" = inner ]; then start_keeper; start_watchdog 60; fi
cleanup() {
    trap '' INT TERM   # a second signal must not cut the cleanup short
    if [ -n "$keeper_pid" ]; then kill -9 "$keeper_pid" 2>/dev/null || true; fi
    if [ -n "$watchdog_pid" ]; then kill "$watchdog_pid" 2>/dev/null || true; fi
    if [ -n "$cur" ] && kill -0 "$cur" 2>/dev/null; then kill -9 "$cur" 2>/dev/null || true; wait "$cur" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

line_limit=20            # seconds to wait for the boot-timer line
qemu_wait=1              # seconds after start before QEMU is measured
if [ "$mode" = inner ]; then line_limit=120; qemu_wait=5; fi

# measure_once <wait-for-boot-timer:yes|no> <guest-MiB> <cmd...>: prints the summary or "fail <why>".
measure_once() {
    local wait_line=$1 mib=$2
    shift 2
    # Emptied here, not by the child's redirection, which may come after the first look for the line below.
    : >"$tmp/err"
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null &
    cur=$!
    local t=0
    if [ "$wait_line" = yes ]; then
        while ! grep -q 'Guest-boot-time' "$tmp/err" 2>/dev/null; do
            if ! kill -0 "$cur" 2>/dev/null; then echo "fail: exited before the boot-timer line"; cur=; return; fi
            if [ $t -ge $((line_limit * 10)) ]; then echo "fail: no boot-timer line in ${line_limit}s"; break; fi
            sleep 0.1
            t=$((t + 1))
        done
        sleep 1
    else
        # Until the guest has touched its RAM (QEMU has set up and run it), at most line_limit, then qemu_wait.
        while kill -0 "$cur" 2>/dev/null && [ "$(smaps_summary "$cur" "$mib" 2>/dev/null | cut -d' ' -f3)" = 0 ] &&
            [ $t -lt $((line_limit * 10)) ]; do
            sleep 0.1
            t=$((t + 1))
        done
        sleep "$qemu_wait"
    fi
    if ! kill -0 "$cur" 2>/dev/null; then echo "fail: the process exited"; cur=; return; fi
    local s
    s=$(smaps_summary "$cur" "$mib" 2>/dev/null || echo "fail: cannot read smaps")
    kill -9 "$cur" 2>/dev/null || true
    wait "$cur" 2>/dev/null || true
    cur=
    case $s in fail*) echo "$s"; return ;; esac
    if [ "$wait_line" = yes ] && ! grep -q 'Guest-boot-time' "$tmp/err"; then echo "fail: no boot-timer line"; return; fi
    echo "$s"
}

# breakdown_of <binary> <cmd...>: one more run of an idle VM at -m 256, broken down by mapping.
breakdown_of() {
    local bin_path=$1
    shift
    : >"$tmp/err"
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null &
    cur=$!
    local t=0
    while ! grep -q 'Guest-boot-time' "$tmp/err" 2>/dev/null && kill -0 "$cur" 2>/dev/null && [ $t -lt $((line_limit * 10)) ]; do
        sleep 0.1
        t=$((t + 1))
    done
    sleep 1
    if kill -0 "$cur" 2>/dev/null; then breakdown "$cur" "$bin_path"; else echo "    by mapping: the VMM exited"; fi
    kill -9 "$cur" 2>/dev/null || true
    wait "$cur" 2>/dev/null || true
    cur=
}

# breakdown <pid> <binary>: kB of Rss by kind of mapping (mappings < 128 MiB), then the largest anonymous ones.
breakdown() {
    awk -v exe="$(readlink -f "$2")" '
        /^[0-9a-f]+-[0-9a-f]+ / {
            range = $1; path = (NF >= 6) ? $6 : ""
            if (path == exe) kind = "binary"
            else if (path ~ /\/libc\.so/) kind = "libc"
            else if (path ~ /\/libm\.so/) kind = "libm"
            else if (path ~ /\/ld-linux/) kind = "loader"
            else if (path == "[heap]") kind = "heap"
            else if (path ~ /^\[stack/) kind = "stack"
            else if (path == "") kind = "anon"
            else kind = "other"
            next
        }
        /^Size:/ { size = $2 }
        /^Rss:/ {
            if (size >= 131072) next
            by[kind] += $2
            if (kind == "anon" && $2 > 0) anon[range] = $2
        }
        END {
            line = "    by mapping (kB):"
            n = split("binary libc libm loader heap anon stack other", order, " ")
            for (i = 1; i <= n; i++) line = line sprintf(" %s %d", order[i], by[order[i]])
            print line
            line = "    largest anonymous (kB):"
            for (k = 0; k < 4; k++) {
                best = ""; for (r in anon) if (best == "" || anon[r] > anon[best]) best = r
                if (best == "") break
                line = line sprintf(" %d", anon[best]); delete anon[best]
            }
            print line
        }' "/proc/$1/smaps"
}

declare -A over
# variant <name> <key> <wait:yes|no> <guest-MiB> <cmd...>
variant() {
    local name=$1 key=$2 wait_line=$3 mib=$4
    shift 4
    local i s rows=()
    for ((i = 0; i < R; i++)); do
        s=$(measure_once "$wait_line" "$mib" "$@")
        case $s in
            fail*)
                printf '%-16s %6s FAILED (%s); stderr:\n' "$name" "$mib" "$s"
                tail -5 "$tmp/err" | sed 's/^/    /'
                return 0 ;;
        esac
        rows+=("$s")
    done
    # the run with the median overhead
    local row
    row=$(printf '%s\n' "${rows[@]}" | sort -n | awk -v n=${#rows[@]} 'NR == int((n + 1) / 2)')
    set -- $row
    over[$key]=$1
    printf '%-16s %6s %12d %12.2f %10d %10d %10d\n' "$name" "$mib" "$1" "$(awk -v k="$1" 'BEGIN { print k / 1024 }')" "$2" "$3" "$4"
}

export STRATOVIRT_LOG_LEVEL=info
echo "memory: idle payload, $R runs per variant (median shown), Rss in kB ($mode)"
printf '%-16s %6s %12s %12s %10s %10s %10s\n' variant "-m" "overhead kB" "overhead MiB" "big-other" "guest kB" "total kB"
ours_cmd() { echo -machine microvm -kernel "$bin/idle.bin" -m "$1" -smp 1 -serial stdio -D; }
for mib in 256 1024; do
    if [ -n "$vmm" ]; then
        variant ours "ours-$mib" yes "$mib" "$vmm" $(ours_cmd "$mib")
        [ "$mib" = 256 ] && breakdown_of "$vmm" "$vmm" $(ours_cmd "$mib")
    fi
    for o in "${others[@]}"; do
        variant "${o%%=*}" "${o%%=*}-$mib" yes "$mib" "${o#*=}" $(ours_cmd "$mib")
        [ "$mib" = 256 ] && breakdown_of "${o#*=}" "${o#*=}" $(ours_cmd "$mib")
    done
    variant "floor (C)" "floor-$mib" yes "$mib" "$bin/kvm-floor" -c -m "$mib" "$bin/idle.bin"
    if [ -n "$qemu" ]; then
        variant "qemu microvm" "qemu-$mib" no "$mib" "$qemu" "${qemu_args[@]}" -M microvm -enable-kvm -m "$mib" \
            -nodefaults -nographic -no-user-config -kernel "$bin/idle.bzImage"
    fi
done
# The same idle VM with one blk and one net device (the payload drives neither; their host side is set up).
truncate -s 64M "$tmp/disk.img"
if [ "$(id -u)" = 0 ]; then netns='unshare -n'; else netns='unshare -rn'; fi
ours_dev_args() { echo -drive "id=d0,file=$tmp/disk.img" -device virtio-blk-device,drive=d0,id=blk0 \
    -netdev tap,id=n0,ifname=mem0 -device virtio-net-device,netdev=n0,id=net0; }
if [ -n "$vmm" ]; then
    variant "ours blk+net" ours-dev yes 256 $netns "$vmm" $(ours_cmd 256) $(ours_dev_args)
    breakdown_of "$vmm" $netns "$vmm" $(ours_cmd 256) $(ours_dev_args)
fi
if [ -n "$qemu" ]; then
    variant "qemu blk+net" qemu-dev no 256 $netns "$qemu" "${qemu_args[@]}" -M microvm -enable-kvm -m 256 \
        -nodefaults -nographic -no-user-config -kernel "$bin/idle.bzImage" \
        -drive "id=d0,file=$tmp/disk.img,format=raw,if=none" -device virtio-blk-device,drive=d0 \
        -netdev tap,id=n0,ifname=memq0,script=no,downscript=no -device virtio-net-device,netdev=n0
fi
[ -n "$qemu" ] || echo "memory: qemu-system-x86_64 not available: no QEMU row"
[ -z "$qemu" ] || echo "memory: QEMU is measured ${qemu_wait}s after its guest RAM is first touched (it does not signal the boot timer; the payload need not run under it)"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
for mib in 256 1024; do
    o=${over[ours-$mib]:-}
    [ -n "$o" ] || continue
    [ -n "${over[qemu-$mib]:-}" ] && echo "ratio -m $mib: ours/qemu $(ratio "$o" "${over[qemu-$mib]}")"
    [ -n "${over[floor-$mib]:-}" ] && echo "ratio -m $mib: ours/floor $(ratio "$o" "${over[floor-$mib]}")"
    for v in "${others[@]}"; do
        l=${v%%=*}
        [ -n "${over[$l-$mib]:-}" ] && echo "ratio -m $mib: $l/ours $(ratio "${over[$l-$mib]}" "$o")"
    done
done
if [ -n "${over[ours-dev]:-}" ]; then
    [ -n "${over[qemu-dev]:-}" ] && echo "ratio -m 256 with blk+net: ours/qemu $(ratio "${over[ours-dev]}" "${over[qemu-dev]}")"
    [ -n "${over[ours-256]:-}" ] && echo "blk+net add to ours: $((over[ours-dev] - over[ours-256])) kB"
    if [ "${over[ours-dev]}" -le "$TARGET_DEV_KB" ]; then v=PASS; else v=FAIL; fi
    echo "target: ours overhead at -m 256 with blk+net = ${over[ours-dev]} kB, <= $TARGET_DEV_KB kB (4.5 MiB): $v"
fi
if [ -n "${over[ours-256]:-}" ]; then
    if [ "${over[ours-256]}" -le "$TARGET_KB" ]; then v=PASS; else v=FAIL; fi
    echo "target: ours overhead at -m 256 = ${over[ours-256]} kB, <= $TARGET_KB kB (4 MiB): $v"
else
    echo "target: not checked (no measurement of our VMM)"
fi
exit 0
