# Scenarios of bench/snapshot.sh (which puts BENCH_REPEAT in front of this file): per guest memory size, our VMM
# boots the lab guest to a shell on the serial port and answers a typed command (cold), is paused and migrated to a
# directory (snapshot), SIGKILLed, then restored from that snapshot BENCH_REPEAT times mapped and BENCH_REPEAT times
# read in (mapped=false), each time timed from the exec to the guest's answer to a command typed at once.
# Prints BENCH-SNAP lines: <mem MiB> <what> <ms>. Times come from /proc/uptime (10 ms steps).
# shellcheck shell=sh disable=SC2154

bsnap=/tmp/bsnap

# bsnap_wait <fixed string> <file> <pid>: until the file holds the string or the VMM is gone (at most 300 s).
bsnap_wait() {
    n=0
    until grep -qF "$1" "$2" || ! kill -0 "$3" 2>/dev/null || [ $n -ge 30000 ]; do sleep 0.01; n=$((n + 1)); done
    grep -qF "$1" "$2"
}

# bsnap_start <mem MiB> <out> [args]: our VMM with the guest's shell on the serial port; its input is a fresh FIFO
# held open on fd 3 (so opening it never blocks), its output <out>. Sets bsnap_pid.
bsnap_start() {
    mem=$1 out=$2
    shift 2
    rm -f $bsnap/in $bsnap/qmp.sock
    mkfifo $bsnap/in
    exec 3<>$bsnap/in
    "$VMM" -machine microvm -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 reboot=k panic=1 lab.action=shell" \
        -m "$mem" -smp 1 -serial stdio -qmp unix:$bsnap/qmp.sock,server,nowait "$@" <$bsnap/in >"$out" 2>&1 &
    bsnap_pid=$!
}

bsnap_kill() {
    kill -KILL "$bsnap_pid" 2>/dev/null
    wait "$bsnap_pid" 2>/dev/null
    exec 3>&-
}

# bsnap_restore <mem> <tag> <incoming>: restore, type a command at once, time the exec to the guest's answer.
bsnap_restore() {
    lab_now_ms
    t0=$LAB_NOW_MS
    bsnap_start "$1" $bsnap/restore.out -incoming "$3"
    echo "echo back-\$((6*7))" >&3
    if bsnap_wait back-42 $bsnap/restore.out "$bsnap_pid"; then
        lab_now_ms
        echo "BENCH-SNAP $1 $2 $((LAB_NOW_MS - t0))"
    else
        echo "BENCH-SNAP $1 $2 failed"
        tail -n 20 $bsnap/restore.out
    fi
    bsnap_kill
}

bench_snapshot() {  # bench_snapshot <mem MiB>
    rm -rf $bsnap
    mkdir -p $bsnap/dir
    lab_now_ms
    t0=$LAB_NOW_MS
    bsnap_start "$1" $bsnap/cold.out
    bsnap_wait GUEST-SHELL $bsnap/cold.out "$bsnap_pid"
    echo "echo cold-\$((6*7))" >&3
    if ! bsnap_wait cold-42 $bsnap/cold.out "$bsnap_pid"; then
        echo "BENCH-SNAP $1 cold failed"
        tail -n 20 $bsnap/cold.out
        bsnap_kill
        return 1
    fi
    lab_now_ms
    echo "BENCH-SNAP $1 cold $((LAB_NOW_MS - t0))"
    qmp-send $bsnap/qmp.sock '{"execute":"stop"}' >/dev/null
    lab_now_ms
    t0=$LAB_NOW_MS
    qmp-send $bsnap/qmp.sock '{"execute":"migrate","arguments":{"uri":"file:'$bsnap/dir'"}}' '{"execute":"query-migrate"}'
    lab_now_ms
    echo "BENCH-SNAP $1 snapshot $((LAB_NOW_MS - t0))"
    echo "BENCH-SNAP-FILE $1 $(du -k $bsnap/dir/memory | cut -f1) KiB on disk"
    bsnap_kill
    rep=1
    while [ "$rep" -le "$BENCH_REPEAT" ]; do
        bsnap_restore "$1" restore-mapped file:$bsnap/dir
        bsnap_restore "$1" restore-read-in file:$bsnap/dir,mapped=false
        rep=$((rep + 1))
    done
    rm -rf $bsnap
}

for mem in 256 1024; do
    scenario "snapshot-$mem" 900 bench_snapshot "$mem"
done
