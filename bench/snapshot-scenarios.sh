# Scenarios of bench/snapshot.sh (which puts BENCH_REPEAT, BENCH_SIZES, BENCH_DENSITY and BENCH_DENSITY_MEM in
# front of this file). The lab guest with its shell on the serial port, 1 vCPU, the same kernel and initramfs under
# our VMM and under QEMU microvm (the lab's qemu-system-x86_64, -enable-kvm -cpu host). Per memory size (MiB):
#   cold      exec to the guest's answer to a command typed once its shell is up
#   snapshot  after QMP stop: ours `migrate file:<dir>` (it answers when the files are written); QEMU 7.2 (which has
#             no file: URI) `migrate exec:cat > <file>` with max-bandwidth unlimited, polled with query-migrate
#             until it reports completed
#   restore   exec of the restoring VMM (ours mapped and read in, QEMU `-incoming exec:cat <file>`, which reads the
#             whole stream into fresh RAM) to the guest's answer to a command typed at once; BENCH_REPEAT times each,
#             interleaved
# Then template density: BENCH_DENSITY VMs of BENCH_DENSITY_MEM MiB under our VMM cold-booted at once, each idle at
# its shell after answering, against as many restored at once from a snapshot of one of them (mapped); the sums
# of their Pss and Rss (/proc/<pid>/smaps_rollup).
# Prints:
#   BENCH-SNAP <ours|qemu> <mem> <what> <ms|failed> [entry_ms=<exec to vCPU 0's first KVM_RUN>] answered=<line>
#   BENCH-SNAP-FILE <ours|qemu> <mem> <KiB on disk>
#   BENCH-DENSITY <cold|restored> vms=<answered> of=<n> pss_kb=<sum> rss_kb=<sum>
# Times come from /proc/uptime (10 ms steps); entry_ms from the monotonic time our VMM logs with
# "Guest-first-entry-time" (STRATOVIRT_LOG_LEVEL=info), against the same clock.
# shellcheck shell=sh disable=SC2154

bsnap=/tmp/bsnap
bsnap_cmdline="console=ttyS0 reboot=k panic=1 lab.action=shell"

# bsnap_wait <fixed string> <file> <pid>: until the file holds the string or the VMM is gone (at most 300 s).
bsnap_wait() {
    n=0
    until grep -qF "$1" "$2" || ! kill -0 "$3" 2>/dev/null || [ $n -ge 30000 ]; do sleep 0.01; n=$((n + 1)); done
    grep -qF "$1" "$2"
}

# bsnap_vm <ours|qemu> <mem> <dir> [args]: one VM, its serial console on stdio: input from the FIFO <dir>/in,
# opened read-write so that opening never blocks and the VMM never reads an end of file; output (with the VMM's
# log) to <dir>/out; QMP on <dir>/qmp.sock. Sets bsnap_pid.
bsnap_vm() {
    kind=$1 mem=$2 d=$3
    shift 3
    mkdir -p "$d"
    rm -f "$d/in" "$d/qmp.sock"
    mkfifo "$d/in"
    if [ "$kind" = ours ]; then
        STRATOVIRT_LOG_LEVEL=info "$VMM" -machine microvm -kernel "$KERNEL" -initrd "$INITRD" -append "$bsnap_cmdline" \
            -m "$mem" -smp 1 -serial stdio -qmp "unix:$d/qmp.sock,server,nowait" -D "$@" <>"$d/in" >"$d/out" 2>&1 &
    else
        # store-global-state=off: the stream does not carry the run state (paused by the stop before migrate), so
        # the restored QEMU runs at once, as ours does, with no QMP cont.
        "$QEMU" -L "$QEMU_FW" -M microvm -enable-kvm -cpu host -m "$mem" -smp 1 -kernel "$KERNEL" -initrd "$INITRD" \
            -append "$bsnap_cmdline" -nographic -no-reboot -nodefaults -serial stdio \
            -global migration.store-global-state=off -qmp "unix:$d/qmp.sock,server,nowait" "$@" \
            <>"$d/in" >"$d/out" 2>&1 &
    fi
    bsnap_pid=$!
}

bsnap_kill() {  # bsnap_kill <pid>...
    kill -KILL "$@" 2>/dev/null
    for p in "$@"; do wait "$p" 2>/dev/null; done
}

# bsnap_ask <dir> <pid> <tag>: types "echo <tag><n>-$((6*7))" on the console at once and again every 100 ms
# (n = 1, 2, ...) until the guest answers <tag><n>-42 (at most 300 s); sets bsnap_answer_ms to when the answer was
# seen. Input typed before a restored QEMU guest runs can be lost (in a local QEMU 7.2 try the whole first line
# was, the guest getting only its newline), hence the leading newline and the retries; bsnap_first (answered= in
# the result) is the line answered first (n > 1: the earlier ones were lost, and the time may be 100 ms late).
bsnap_ask() {
    lab_now_ms
    ask_end=$((LAB_NOW_MS + 300000)) ask_next=0 bsnap_typed=0
    while :; do
        lab_now_ms
        if [ "$LAB_NOW_MS" -ge "$ask_next" ]; then
            bsnap_typed=$((bsnap_typed + 1)) ask_next=$((LAB_NOW_MS + 100))
            # shellcheck disable=SC2016 # the guest's shell expands it
            printf '\necho %s%d-$((6*7))\n' "$3" "$bsnap_typed" 1<>"$1/in"
        fi
        if grep -q "$3[0-9]*-42" "$1/out"; then
            lab_now_ms
            bsnap_answer_ms=$LAB_NOW_MS
            bsnap_first=$(grep -o "$3[0-9]*-42" "$1/out" | head -n 1)
            bsnap_first=${bsnap_first#"$3"}
            bsnap_first=${bsnap_first%-42}
            return 0
        fi
        { kill -0 "$2" 2>/dev/null && [ "$LAB_NOW_MS" -lt "$ask_end" ]; } || return 1
        sleep 0.01
    done
}

# bsnap_result <kind> <mem> <what> <t0 ms> <dir>: after bsnap_ask, the BENCH-SNAP line (with our VMM's first
# KVM_RUN of vCPU 0, when it logged one), or "failed" and the output's tail.
bsnap_result() {
    if [ "$bsnap_answered" -eq 1 ]; then
        entry=$(sed -n 's/.*Guest-first-entry-time = .*(monotonic \([0-9]*\) ns).*/\1/p' "$5/out" | head -n 1)
        extra=''
        [ -n "$entry" ] && extra=" entry_ms=$((entry / 1000000 - $4))"
        echo "BENCH-SNAP $1 $2 $3 $((bsnap_answer_ms - $4))$extra answered=$bsnap_first"
    else
        echo "BENCH-SNAP $1 $2 $3 failed"
        tail -n 20 "$5/out"
    fi
}

# bsnap_timed_vm <kind> <mem> <what> <dir> [args]: starts a VM, waits for its shell unless it is a restore
# (args given), types at once, prints the time from exec to the answer. Leaves the VM running (bsnap_pid).
bsnap_timed_vm() {
    kind=$1 tmem=$2 what=$3 td=$4
    shift 4
    lab_now_ms
    tt0=$LAB_NOW_MS
    bsnap_vm "$kind" "$tmem" "$td" "$@"
    bsnap_answered=0
    if { [ $# -gt 0 ] || bsnap_wait GUEST-SHELL "$td/out" "$bsnap_pid"; } && bsnap_ask "$td" "$bsnap_pid" "$what"; then
        bsnap_answered=1
    fi
    bsnap_result "$kind" "$tmem" "$what" "$tt0" "$td"
    [ "$bsnap_answered" -eq 1 ]
}

# bsnap_take <kind> <mem> <dir> <target> [what]: stops the VM of <dir> and saves it to <target> (ours: a directory;
# QEMU: a file), timing the save from after `stop`; <what> (default snapshot) names it in the BENCH-SNAP line.
bsnap_take() {
    take=${5:-snapshot}
    sock=$3/qmp.sock
    if [ "$1" = qemu ]; then
        # QEMU throttles migration to 32 MiB/s by default; a local file wants no limit.
        qmp-send "$sock" '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":107374182400}}' >/dev/null
    fi
    qmp-send "$sock" '{"execute":"stop"}' >/dev/null
    lab_now_ms
    st0=$LAB_NOW_MS
    if [ "$1" = ours ]; then
        mkdir -p "$4"
        qmp-send "$sock" '{"execute":"migrate","arguments":{"uri":"file:'"$4"'"}}' >/dev/null
        state=$(qmp-send "$sock" '{"execute":"query-migrate"}')
        file=$4/memory
    else
        qmp-send "$sock" '{"execute":"migrate","arguments":{"uri":"exec:cat > '"$4"'"}}' >/dev/null
        n=0
        until state=$(qmp-send "$sock" '{"execute":"query-migrate"}'); case $state in *'"completed"'* | *'"failed"'*) true ;; *) false ;; esac; do
            [ $n -ge 6000 ] && break
            sleep 0.05
            n=$((n + 1))
        done
        file=$4
    fi
    lab_now_ms
    case $state in
        *'"completed"'*)
            echo "BENCH-SNAP $1 $2 $take $((LAB_NOW_MS - st0))"
            echo "BENCH-SNAP-FILE $1 $2 $(du -k "$file" | cut -f1) KiB on disk ($take)"
            ;;
        *)
            echo "BENCH-SNAP $1 $2 $take failed"
            echo "$state" | tail -n 5
            return 1
            ;;
    esac
}

bench_snapshot() {  # bench_snapshot <mem MiB>
    rm -rf $bsnap
    mkdir -p $bsnap
    ours=0 qemu=0 bsnap_pid=
    if [ -n "$VMM" ] && bsnap_timed_vm ours "$1" cold $bsnap/ours-cold && bsnap_take ours "$1" $bsnap/ours-cold $bsnap/ours-snap; then
        ours=1
    fi
    bsnap_kill "$bsnap_pid"
    if [ -n "$QEMU" ] && bsnap_timed_vm qemu "$1" cold $bsnap/qemu-cold && bsnap_take qemu "$1" $bsnap/qemu-cold $bsnap/qemu.mig; then
        qemu=1
    fi
    bsnap_kill "$bsnap_pid"
    rep=1
    while [ "$rep" -le "$BENCH_REPEAT" ]; do
        if [ $ours -eq 1 ]; then
            bsnap_timed_vm ours "$1" restore-mapped $bsnap/ours-r -incoming file:$bsnap/ours-snap
            bsnap_kill "$bsnap_pid"
            bsnap_timed_vm ours "$1" restore-read-in $bsnap/ours-r -incoming file:$bsnap/ours-snap,mapped=false
            bsnap_kill "$bsnap_pid"
        fi
        if [ $qemu -eq 1 ]; then
            bsnap_timed_vm qemu "$1" restore $bsnap/qemu-r -incoming "exec:cat $bsnap/qemu.mig"
            bsnap_kill "$bsnap_pid"
        fi
        rep=$((rep + 1))
    done
    rm -rf $bsnap
}

# bsnap_memory <label> <n> <pid>...: one BENCH-DENSITY line, the sums of Pss and Rss of the running VMMs.
bsnap_memory() {
    label=$1 of=$2
    shift 2
    pss=0 rss=0 vms=0
    for p in "$@"; do
        r=$(awk '/^Pss:/ { p = $2 } /^Rss:/ { r = $2 } END { print p + 0, r + 0 }' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
        pss=$((pss + ${r% *})) rss=$((rss + ${r#* })) vms=$((vms + 1))
    done
    echo "BENCH-DENSITY $label vms=$vms of=$of pss_kb=$pss rss_kb=$rss"
}

# bsnap_fleet <label> <n> <mem> [args]: starts n VMs at once (in $bsnap/<label><i>), then waits for each to answer
# at its shell; settles 5 s and prints their memory. Leaves them running, their pids in bsnap_pids.
bsnap_fleet() {
    label=$1 count=$2 fmem=$3
    shift 3
    bsnap_pids=''
    lab_now_ms
    fleet_t0=$LAB_NOW_MS
    i=1
    while [ "$i" -le "$count" ]; do
        bsnap_vm ours "$fmem" "$bsnap/$label$i" "$@"
        bsnap_pids="$bsnap_pids $bsnap_pid"
        i=$((i + 1))
    done
    i=1 answered=0
    for p in $bsnap_pids; do
        if { [ $# -gt 0 ] || bsnap_wait GUEST-SHELL "$bsnap/$label$i/out" "$p"; } && bsnap_ask "$bsnap/$label$i" "$p" "$label$i-"; then
            answered=$((answered + 1))
            lab_now_ms
            echo "bench: $label VM $i answered ($((LAB_NOW_MS - fleet_t0)) ms after the first exec)"
        else
            echo "bench: $label VM $i did not answer"
            tail -n 10 "$bsnap/$label$i/out"
        fi
        i=$((i + 1))
    done
    sleep 5
    # shellcheck disable=SC2086 # one pid a word
    bsnap_memory "$label" "$count" $bsnap_pids
    [ "$answered" -eq "$count" ]
}

bench_density() {  # bench_density <n> <mem MiB>
    rm -rf $bsnap
    mkdir -p $bsnap
    bsnap_fleet cold "$1" "$2"
    cold_pids=$bsnap_pids
    if bsnap_take ours "$2" $bsnap/cold1 $bsnap/template template; then
        echo "BENCH-DENSITY-FILE $(du -k $bsnap/template/memory | cut -f1) KiB memory file (page cache the clones share)"
        # shellcheck disable=SC2086 # one pid a word
        bsnap_kill $cold_pids
        bsnap_fleet restored "$1" "$2" -incoming file:$bsnap/template
        cold_pids=$bsnap_pids
    fi
    # shellcheck disable=SC2086 # one pid a word
    bsnap_kill $cold_pids
    rm -rf $bsnap
}

for mem in $BENCH_SIZES; do
    scenario "snapshot-$mem" 900 bench_snapshot "$mem"
done
if [ "$BENCH_DENSITY" -gt 0 ]; then
    scenario snapshot-density 900 bench_density "$BENCH_DENSITY" "$BENCH_DENSITY_MEM"
fi
