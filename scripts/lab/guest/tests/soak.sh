# The load test's guest (host side: scripts/lab/soak-host.sh; bench/soak.sh and lab scenario soak-short). Expects
# one virtio-blk disk /dev/vda (at least 128 MiB, scratch) and eth0 on a tap whose host end 10.0.2.2 serves /blob
# and /blob.sha256 over HTTP. For soak.secs=<s> (kernel command line) it keeps every CPU busy with:
#   disk   two soak-disk workers: O_DIRECT 64 KiB writes, each read back and compared, plus re-reads of earlier blocks
#   net    wget of /blob in a loop, each copy's sha256 compared; an adaptive ping (-A) of the host alongside
#   timers one shell per CPU (taskset) sleeping 100 ms at a time (usleep: a fork each), for timer interrupts and IPIs
# Lines: SOAK-LOAD-START, SOAK-PROGRESS every 60 s, the workers' SOAK-DISK lines, SOAK-LOAD-END (the host stops
# polling QMP and takes its last sample), then the results:
#   SOAK-DISK-END worker=<w> ... mismatches=<n> errors=<n> max-ms=<n>   (soak-disk)
#   SOAK-NET-TCP rounds=<n> bad=<checksum mismatches> failed=<wget failures>
#   SOAK-NET-PING sent=<n> received=<n>
#   SOAK-TIMERS loops=<n>
#   SOAK-IRQ name=<virtioN|LOC|RES|CAL|TLB> device=<vda|eth0|-> delta=<interrupts during the load, all CPUs>
#   SOAK-BLK reads=<completed> writes=<completed> inflight=<requests still in flight at the end>
#   SOAK-NETDEV rx-packets=<n> tx-packets=<n> errors=<rx+tx errors>
#   SOAK-DMESG <line>   each kernel message about a timeout, hung task, stall or virtio/I/O error
#   SOAK-DMESG-PROBLEMS n=<count>
secs=60
read -r cmdline </proc/cmdline
for arg in $cmdline; do
    case "$arg" in soak.secs=*) secs=${arg#soak.secs=} ;; esac
done
cpus=$(grep -c '^processor' /proc/cpuinfo)
uptime_s() { read -r up _ </proc/uptime; echo "${up%.*}"; }

ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
n=0
until ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1 || [ $n -ge 60 ]; do n=$((n + 1)); sleep 0.5; done
expected=$(timeout 60 wget -q -O - http://10.0.2.2/blob.sha256)

# Counters before the load: interrupts, the disk's completed requests, the NIC's packets.
cat /proc/interrupts >/tmp/irq.before
read -r r0 _ _ _ w0 _ </sys/block/vda/stat
rx0=$(cat /sys/class/net/eth0/statistics/rx_packets) tx0=$(cat /sys/class/net/eth0/statistics/tx_packets)

start=$(uptime_s)
end=$((start + secs))
echo "SOAK-LOAD-START cpus=$cpus secs=$secs"
pids=
for w in 0 1; do
    soak-disk /dev/vda "$secs" "$w" 2 2>&1 | tee "/tmp/disk$w.out" &
    pids="$pids $!"
done
(
    rounds=0 bad=0 failed=0
    while [ "$(uptime_s)" -lt "$end" ]; do
        # (busybox 1.35's wget -T crashes: timeout(1) bounds it instead.)
        if timeout 120 wget -q -O /tmp/net.blob http://10.0.2.2/blob; then
            got=$(sha256sum </tmp/net.blob)
            [ "${got%% *}" = "$expected" ] || bad=$((bad + 1))
        else
            failed=$((failed + 1))
        fi
        rounds=$((rounds + 1))
        echo "$rounds" >/tmp/net.rounds
    done
    echo "SOAK-NET-TCP rounds=$rounds bad=$bad failed=$failed" >/tmp/net.out
) &
pids="$pids $!"
ping -A -q -w "$secs" 10.0.2.2 >/tmp/ping.out 2>&1 &
pids="$pids $!"
c=0
while [ $c -lt "$cpus" ]; do
    taskset -c "$c" sh -c 'n=0 up=0; while [ "${up%.*}" -lt '"$end"' ]; do usleep 100000; n=$((n + 1)); read -r up _ </proc/uptime; done
        echo "$n" >/tmp/timers.'"$c" &
    pids="$pids $!"
    c=$((c + 1))
done
(
    while sleep 60; do
        [ "$(uptime_s)" -lt "$end" ] || break
        echo "SOAK-PROGRESS t=$(($(uptime_s) - start)) net-rounds=$(cat /tmp/net.rounds 2>/dev/null || echo 0)"
    done
) &
progress=$!
# shellcheck disable=SC2086 # a list of pids
wait $pids
kill $progress 2>/dev/null
echo "SOAK-LOAD-END t=$(($(uptime_s) - start))"

cat /tmp/net.out
sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) packets received.*/SOAK-NET-PING sent=\1 received=\2/p' /tmp/ping.out
echo "SOAK-TIMERS loops=$(cat /tmp/timers.* | awk '{ s += $1 } END { print s + 0 }')"
cat /proc/interrupts >/tmp/irq.after
# The microVM's empty hotplug slots are virtio devices too: name the disk's and the NIC's.
blk_dev=$(basename "$(readlink /sys/block/vda/device)") net_dev=$(basename "$(readlink /sys/class/net/eth0/device)")
awk -v cpus="$cpus" -v blk="$blk_dev" -v net="$net_dev" '
    {
        name = $NF; key = $1
        if (key ~ /^(LOC|RES|CAL|TLB):$/) name = substr(key, 1, length(key) - 1)
        else if (name != blk && name != net) next
        s = 0
        for (i = 2; i <= cpus + 1; i++) s += $i
        if (FILENAME == "/tmp/irq.before") before[name] = s; else after[name] = s
    }
    END {
        for (n in after)
            printf "SOAK-IRQ name=%s device=%s delta=%d\n", n, n == blk ? "vda" : n == net ? "eth0" : "-", after[n] - before[n]
    }' /tmp/irq.before /tmp/irq.after
read -r r1 _ _ _ w1 _ </sys/block/vda/stat
echo "SOAK-BLK reads=$((r1 - r0)) writes=$((w1 - w0)) inflight=$(awk '{ print $1 + $2 }' /sys/block/vda/inflight)"
s=/sys/class/net/eth0/statistics
echo "SOAK-NETDEV rx-packets=$(($(cat $s/rx_packets) - rx0)) tx-packets=$(($(cat $s/tx_packets) - tx0))" \
    "errors=$(($(cat $s/rx_errors) + $(cat $s/tx_errors)))"
dmesg | grep -i -E 'timed? ?out|hung task|blocked for more than|stall|virtio.*(error|broken|fail)|I/O error' \
    >/tmp/dmesg.problems
sed 's/^/SOAK-DMESG /' /tmp/dmesg.problems
echo "SOAK-DMESG-PROBLEMS n=$(wc -l </tmp/dmesg.problems)"
# The host stops its QMP poller when it sees SOAK-LOAD-END and then serves /poller-stopped; powering off before that
# would close QMP under a request in flight.
n=0
until timeout 5 wget -q -O /dev/null http://10.0.2.2/poller-stopped 2>/dev/null || [ $n -ge 120 ]; do
    n=$((n + 1))
    sleep 0.5
done
