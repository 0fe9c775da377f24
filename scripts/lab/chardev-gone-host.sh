#!/bin/sh
# The host side of the chardev-gone lab scenario (outer VM, busybox ash; installed there as chardev-gone-host):
#
#   chardev-gone-host <VMM arguments...>
#
# Runs the VMM (its arguments) with two Unix socket chardevs in server mode, the serial console ser0 on
# /tmp/cg/ser.sock and the virtconsole con0 on /tmp/cg/hvc.sock, and QMP on /tmp/cg/qmp.sock; the guest runs
# guest test chardev-gone.sh. For each chardev a first peer (vsock-echo uds-pipe) connects and exchanges a line
# with the guest both ways; then both peers are killed with SIGKILL while the guest keeps writing. 5 s later the
# host checks that the VMM runs and answers QMP and how much CPU its main thread (which serves the chardevs) used
# meanwhile; then a second peer connects to each socket, must receive the guest's output again and exchange a line
# again. "stop" to hvc0 ends the guest. Prints, after the VM:
#   HOST-CG-EXCHANGE-<1|2> <ser|hvc> <ok|failed>   HOST-CG-KILLED <ser|hvc>   HOST-CG-VMM-AFTER-KILL <alive|gone>
#   HOST-CG-QMP-AFTER-KILL <reply>   HOST-CG-MAIN-THREAD-TICKS-IN-5S <n>   HOST-CG-OUTPUT-AGAIN <ser|hvc> <ok|failed>
#   HOST-CG-TICKS-WHILE-GONE <guest ticks written while no peer was connected>
# then the guest's lines each peer received (CG-SER1 <line>, CG-HVC2 <line>, ...), the VMM's log (-D, info) and its
# exit status.
# A write to a peer that is gone must fail, not end this script before it reports.
trap '' PIPE
dir=/tmp/cg
rm -rf "$dir"
mkdir -p "$dir"
log=$dir/vmm.log host=$dir/host.out
"$VMM" "$@" -D "$log" -qmp "unix:$dir/qmp.sock,server,nowait" \
    -chardev "socket,id=ser0,path=$dir/ser.sock,server,nowait" -serial chardev:ser0 \
    -chardev "socket,id=con0,path=$dir/hvc.sock,server,nowait" -device virtio-serial-device \
    -device virtconsole,chardev=con0,id=port0 </dev/null >"$dir/vmm.out" 2>&1 &
vmm=$!

# await <file> <text> [tenths of a second, default 1200]: true once <file> holds <text>, false when the VMM ended
# or the time ran out.
await() {
    _n=0
    until grep -q -- "$2" "$1" 2>/dev/null; do
        kill -0 $vmm 2>/dev/null || return 1
        [ $_n -lt "${3:-1200}" ] || return 1
        sleep 0.1
        _n=$((_n + 1))
    done
}
# connect <kind> <round> <fd>: a peer on <kind>'s socket, its input a FIFO held open on fd <fd>, its output in
# $dir/<kind><round>.out; sets peer_<kind> to its pid.
connect() {
    mkfifo "$dir/$1$2.in"
    vsock-echo uds-pipe "$dir/$1.sock" <"$dir/$1$2.in" >"$dir/$1$2.out" 2>&1 &
    eval "peer_$1=$!"
    eval "exec $3>$dir/$1$2.in"
}
# exchange <kind> <round> <fd> <word>: sends <word> to the guest and waits for its echo.
exchange() {
    echo "$4" >&"$3"
    if await "$dir/$1$2.out" "GUEST-CG-$(echo "$1" | tr a-z A-Z)-GOT $4" 300; then r=ok; else r=failed; fi
    echo "HOST-CG-EXCHANGE-$2 $1 $r" >>"$host"
}
ticks() { awk '{ print $14 + $15 }' "/proc/$vmm/task/$vmm/stat" 2>/dev/null; }
last_tick() { grep -o 'GUEST-CG-TICK [0-9]*' "$1" | tail -n 1 | cut -d' ' -f2; }

n=0
until [ -S "$dir/ser.sock" ] && [ -S "$dir/hvc.sock" ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
connect ser 1 3
connect hvc 1 4
await "$dir/hvc1.out" GUEST-CG-READY 1800
exchange ser 1 3 hello-ser
exchange hvc 1 4 hello-hvc
kill -KILL "$peer_ser" "$peer_hvc"
exec 3>&- 4>&-
wait "$peer_ser" "$peer_hvc" 2>/dev/null
echo "HOST-CG-KILLED ser" >>"$host"
echo "HOST-CG-KILLED hvc" >>"$host"
gone_at=$(last_tick "$dir/hvc1.out")
before=$(ticks)
sleep 5
after=$(ticks)
echo "HOST-CG-MAIN-THREAD-TICKS-IN-5S $((after - before))" >>"$host"
if kill -0 $vmm 2>/dev/null; then echo "HOST-CG-VMM-AFTER-KILL alive" >>"$host"; else echo "HOST-CG-VMM-AFTER-KILL gone" >>"$host"; fi
echo "HOST-CG-QMP-AFTER-KILL $(qmp-send "$dir/qmp.sock" '{"execute":"query-status"}' 2>&1 | tr -d '\r' | tail -n 1)" >>"$host"
connect ser 2 3
connect hvc 2 4
# A tick that the second peer receives was written after it connected.
for kind in ser hvc; do
    if await "$dir/${kind}2.out" GUEST-CG-TICK 300; then r=ok; else r=failed; fi
    echo "HOST-CG-OUTPUT-AGAIN $kind $r" >>"$host"
done
back_at=$(last_tick "$dir/hvc2.out")
echo "HOST-CG-TICKS-WHILE-GONE $((${back_at:-0} - ${gone_at:-0}))" >>"$host"
exchange ser 2 3 again-ser
exchange hvc 2 4 again-hvc
echo stop >&4
wait $vmm
rc=$?
exec 3>&- 4>&-
wait
cat "$host"
# What each peer received from the guest, each line marked with the peer (CG-SER1, CG-HVC2, ...).
for f in ser1 hvc1 ser2 hvc2; do
    tr -d '\r' <"$dir/$f.out" | grep GUEST- | sed "s/^/CG-$(echo $f | tr a-z A-Z) /"
done
tr -d '\r' <"$dir/vmm.out"
cat "$log"
rm -rf "$dir"
exit $rc
