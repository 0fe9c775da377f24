#!/usr/bin/env bash
# Many VMs: churn (one VM started and stopped many times) and density (many idle VMs at once).
#
#   bench/fleet.sh [--native | --lab] [vmm]       (default vmm: out/stratovirt)
#   env: CYCLES=500 churn cycles; N=200 VMs at once; QEMU_N=<as many as fit, at most N> QEMU microvms
#        (0: none); FLEET_STRACE=1 runs every other VMM of the density run under strace -f and shows the end of
#        the trace of each that fails; FLEET_CORES=1 (lab only) has the VMMs dump core (guest RAM left out) and prints
#        the first failed VMM's core, gzipped and base64-encoded between @@CORE lines (for gdb with the .dbg file)
#
# Churn: bench/fleet/churn.c, one long-lived QMP client, starts the idle payload VM (128 MiB, a raw disk, a tap
# in a network namespace of its own, a QMP socket) CYCLES times and ends each with QMP quit; it fails if a cycle
# fails or if its own fds or RSS, the run directory or the network interfaces grew (taken after the first cycle).
# Density: N idle payload VMs (128 MiB, QMP socket each) started together; prints the time until every one has
# reached its boot-timer exit, the sum of their overhead (Rss of mappings < 128 MiB, overhead_kb in bench/lib.sh), the
# host's MemAvailable before and after; then quits each through QMP and checks that every VMM exited 0 and no
# socket or process is left. The same for QEMU_N QEMU microvms (stopped with SIGTERM; QEMU does not signal the
# boot timer, so it is measured 10 s after the last start) where QEMU is there.
#
# Without a usable /dev/kvm (or with --lab) it runs inside the nested lab (6 GiB of RAM, 2 vCPUs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." 2>/dev/null && pwd)
if [ -f "$(dirname "$0")/bench-lib.sh" ]; then source "$(dirname "$0")/bench-lib.sh"; else source "$root/bench/lib.sh"; fi
parse_bench_options fleet '2,18p' "$@"
set -- "${bench_args[@]}"
CYCLES=${CYCLES:-500}
N=${N:-200}
QEMU_N=${QEMU_N:-}

if [ "$mode" = inner ]; then
    root=$PWD
    bin=$PWD
    vmm=${1:-}
    qemu=
    [ -x ./qemu-system-x86_64 ] && qemu=./qemu-system-x86_64
    qemu_args=(-L ./qemu-fw)
    strace=
    [ -x ./strace ] && strace=./strace
else
    vmm=${1:-$root/out/stratovirt}
    case $vmm in /*) ;; *) vmm=$PWD/$vmm ;; esac
    [ -x "$vmm" ] || { echo "fleet: no VMM at $vmm (build it with scripts/build.sh)" >&2; exit 2; }
    echo "fleet: building the floor, the payloads, churn and qmp-send into .cache/bench" >&2
    build_inputs
    bin=$(bench_dir)
    gcc -O2 -Wall -Wextra -o "$bin/churn" "$root/bench/fleet/churn.c"
    gcc -O2 -Wall -o "$bin/qmp-send" "$root/scripts/lab/qmp-send.c"
    ensure_tool qemu-system-x86_64 qemu-system-x86 optional || true
    qemu=$(command -v qemu-system-x86_64 || true)
    qemu_args=()
    choose_mode fleet "measuring inside the nested lab"
    if [ "$mode" = lab ]; then
        extra=("$bin/churn" "$bin/qmp-send")
        [ -n "$qemu" ] && extra+=("$qemu")
        [ -n "${FLEET_STRACE:-}" ] && ensure_tool strace strace && extra+=("$(command -v strace)")
        LAB_TIMEOUT=${LAB_TIMEOUT:-2400} LAB_ENV="CYCLES=$CYCLES N=$N QEMU_N=$QEMU_N FLEET_CORES=${FLEET_CORES:-}" stage_and_run_in_lab fleet.sh "$vmm" "${extra[@]}"
        exit $?
    fi
    [ -c /dev/kvm ] || { echo "fleet: $(why_no_kvm)" >&2; exit 1; }
    strace=
    [ -n "${FLEET_STRACE:-}" ] && ensure_tool strace strace && strace=$(command -v strace)
fi

if [ "$mode" = inner ]; then tmp=$(mktemp -d /tmp/fleet.XXXXXX); else tmp=$(mktemp -d "$(bench_dir)/run.XXXXXX"); fi
keeper_pid=
[ "$mode" = inner ] && start_keeper
machine=microvm
if [ -n "${FLEET_CORES:-}" ] && [ "$mode" = inner ]; then
    # Anonymous private memory and ELF headers only; guest RAM is left out with dump-guest-core=off.
    ulimit -c unlimited
    echo "$tmp/core.%p" >/proc/sys/kernel/core_pattern
    echo 0x11 >/proc/self/coredump_filter
    machine=microvm,dump-guest-core=off
fi
cleanup() {
    trap '' INT TERM
    [ -n "$keeper_pid" ] && kill -9 "$keeper_pid" 2>/dev/null
    pkill -9 -f "$tmp/" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$(id -u)" = 0 ]; then netns='unshare -n'; else netns='unshare -rn'; fi
status=0

echo "fleet: churn, $CYCLES start/quit cycles of one VM ($mode)"
mkdir "$tmp/run"
truncate -s 16M "$tmp/disk.img"
$netns "$bin/churn" "$CYCLES" "$tmp/run" "$vmm" -machine microvm -kernel "$bin/idle.bin" -m 128 -smp 1 \
    -serial "file,path=$tmp/serial.out" -qmp "unix:{sock},server,nowait" \
    -drive "id=d0,file=$tmp/disk.img" -device virtio-blk-device,drive=d0,id=blk0 \
    -netdev tap,id=n0,ifname=churn0 -device virtio-net-device,netdev=n0,id=net0 || status=1
[ "$status" = 0 ] || { echo "fleet: the VMM's stderr of the last cycle:"; tail -5 "$tmp/run.err"; }

uptime_s() { cut -d' ' -f1 /proc/uptime; }
mem_avail_kb() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }

# density <label> <count> <kind: ours|qemu>
density() {
    local label=$1 count=$2 kind=$3 d="$tmp/$1" i t0 t1 before after sum=0 pids=() failed=0 left now next_report
    mkdir -p "$d"
    before=$(mem_avail_kb)
    t0=$(uptime_s)
    for ((i = 1; i <= count; i++)); do
        if [ "$kind" = ours ]; then
            trace=()
            [ -n "$strace" ] && [ $((i % 2)) = 1 ] && trace=("$strace" -f -tt -o "$d/$i.trace")
            STRATOVIRT_LOG_LEVEL=info "${trace[@]}" "$vmm" -machine "$machine" -kernel "$bin/idle.bin" -m 128 -smp 1 \
                -serial "file,path=$d/$i.serial" -qmp "unix:$d/$i.sock,server,nowait" -D 2>"$d/$i.err" </dev/null &
        else
            "$qemu" "${qemu_args[@]}" -M microvm -enable-kvm -m 128 -nodefaults -nographic -no-user-config \
                -kernel "$bin/idle.bzImage" >/dev/null 2>"$d/$i.err" </dev/null &
        fi
        pids+=($!)
        [ $((i % 50)) = 0 ] && echo "fleet: $label: $i started"
    done
    if [ "$kind" = ours ]; then
        # Until every VM has booted, or none is left to boot (ended ones counted), or 600 s of uptime have passed.
        local ready ended p deadline
        deadline=$(awk -v t="$t0" 'BEGIN { printf "%d", t + 600 }')
        next_report=$((deadline - 570))
        while :; do
            ready=$(grep -l Guest-boot-time "$d"/*.err 2>/dev/null | wc -l)
            ended=0
            for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || ended=$((ended + 1)); done
            [ $((ready + ended)) -ge "$count" ] && break
            now=$(cut -d. -f1 /proc/uptime)
            if [ "$now" -ge "$deadline" ]; then echo "fleet: $label: only $ready of $count VMs booted in 600 s"; break; fi
            # Something every 30 s: the lab runner stops an outer VM that prints nothing for 300 s.
            if [ "$now" -ge "$next_report" ]; then echo "fleet: $label: $ready booted, $ended ended"; next_report=$((now + 30)); fi
            sleep 1
        done
        t1=$(uptime_s)
        sleep 1
    else
        sleep 10
        t1=
    fi
    for p in "${pids[@]}"; do sum=$((sum + $(overhead_kb "$p"))); done
    after=$(mem_avail_kb)
    local alive=0
    for ((i = 1; i <= count; i++)); do
        kill -0 "${pids[i - 1]}" 2>/dev/null && alive=$((alive + 1))
    done
    if [ "$kind" = ours ]; then
        # qmp-send gives up after 10 s without an answer, which a VMM among hundreds starting may take: retry.
        for ((i = 1; i <= count; i++)); do
            (
                for _ in 1 2 3 4 5 6; do
                    "$bin/qmp-send" "$d/$i.sock" '{"execute":"quit"}' >/dev/null 2>"$d/$i.quit" && exit 0
                    kill -0 "${pids[i - 1]}" 2>/dev/null || exit 0
                    sleep 1
                done
            ) &
        done
    else
        kill -TERM "${pids[@]}" 2>/dev/null || true
    fi
    # Until every VM has ended, or 300 s have passed (those left are reported, then killed).
    local running stuck=0 quit_deadline
    quit_deadline=$(( $(cut -d. -f1 /proc/uptime) + 300 ))
    next_report=$(( quit_deadline - 270 ))
    while :; do
        running=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
        [ "$running" -eq 0 ] && break
        now=$(cut -d. -f1 /proc/uptime)
        if [ "$now" -ge "$quit_deadline" ]; then
            stuck=$running
            echo "fleet: $label: $stuck VMs still running 300 s after they were told to stop; killing them"
            for ((i = 1; i <= count; i++)); do
                kill -0 "${pids[i - 1]}" 2>/dev/null || continue
                echo "fleet: $label VM $i did not stop; qmp-send said: $(tr '\n' ' ' < "$d/$i.quit" 2>/dev/null)"
                kill -9 "${pids[i - 1]}" 2>/dev/null || true
            done
            break
        fi
        if [ "$now" -ge "$next_report" ]; then echo "fleet: $label: $running still stopping"; next_report=$((now + 30)); fi
        sleep 1
    done
    local st statuses=() shown=0
    for ((i = 1; i <= count; i++)); do
        st=0
        wait "${pids[i - 1]}" || st=$?
        statuses+=("$st")
        [ "$st" = 0 ] && continue
        failed=$((failed + 1))
        # The first few that failed, with their whole stderr (an abort's message is longer than a line).
        if [ "$shown" -lt 3 ]; then
            echo "fleet: $label VM $i exited with status $st$([ "$st" -gt 128 ] && echo " (signal $((st - 128)))"); its stderr:"
            head -c 4000 "$d/$i.err" | sed 's/^/    /'
            [ -f "$d/$i.trace" ] && { echo "fleet: its system calls end (strace -f):"; tail -40 "$d/$i.trace" | sed 's/^/    /'; }
            if [ -f "$tmp/core.${pids[i - 1]}" ] && [ -z "${core_shown:-}" ]; then
                core_shown=1
                echo "@@CORE VM $i pid ${pids[i - 1]} ($(wc -c <"$tmp/core.${pids[i - 1]}") bytes)"
                gzip -c "$tmp/core.${pids[i - 1]}" | base64
                echo "@@CORE END"
            fi
            shown=$((shown + 1))
        fi
    done
    wait
    if [ "$failed" -gt 0 ] && [ "$mode" = inner ]; then echo "fleet: the kernel's last words:"; dmesg | tail -15 | sed 's/^/    /'; fi
    [ "$failed" -gt 0 ] && echo "fleet: $label exit statuses: $(printf '%s\n' "${statuses[@]}" | sort -n | uniq -c | awk '{ printf "%s%d x %d", sep, $1, $2; sep = ", " }')"
    left=$(find "$d" -name '*.sock' | wc -l)
    local procs=$stuck
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && procs=$((procs + 1)); done
    printf '%-6s VMs %4d alive %4d  all booted in %8s s  overhead sum %8d kB (%.2f MiB each)  MemAvailable %d -> %d kB (%d kB used)  exit!=0 %d  sockets left %d  processes left %d\n' \
        "$label" "$count" "$alive" "${t1:+$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')}" "$sum" \
        "$(awk -v s="$sum" -v n="$count" 'BEGIN { print s / n / 1024 }')" "$before" "$after" $((before - after)) "$failed" "$left" "$procs"
    if [ "$kind" = ours ] && { [ "$alive" -ne "$count" ] || [ "$failed" -ne 0 ] || [ "$left" -ne 0 ] || [ "$procs" -ne 0 ]; }; then status=1; fi
    eval "sum_$kind=$sum count_$kind=$count"
}

echo "fleet: density, $N idle VMs of 128 MiB started together"
density ours "$N" ours
if [ "${QEMU_N:-}" = 0 ]; then
    echo "fleet: QEMU_N=0: no QEMU row"
elif [ -n "$qemu" ]; then
    # As many QEMU microvms as the host holds with a margin (about 40 MiB each), at most N.
    fit=$(( $(mem_avail_kb) * 7 / 10 / (40 * 1024) ))
    qn=${QEMU_N:-$(( fit < N ? fit : N ))}
    density qemu "$qn" qemu
    awk -v a="$sum_ours" -v n="$count_ours" -v b="$sum_qemu" -v m="$count_qemu" \
        'BEGIN { if (b > 0) printf "ratio overhead per VM: ours/qemu %.2f\n", (a / n) / (b / m) }'
else
    echo "fleet: qemu-system-x86_64 not available: no QEMU row"
fi
exit $status
