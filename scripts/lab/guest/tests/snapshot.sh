# Snapshot and restore under a running guest (the host side is SnapshotScenarios' host script): a counter writes a
# line a tick to a file on its disk (/dev/vda, ext4) and to the console while the host pauses, snapshots, kills and
# restores the VM. Afterwards the file, re-read from the disk, must hold every tick once, in order, with uptimes that
# never go back, and the host must answer ping again.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
mkdir -p /disk
if ! mount -t ext4 /dev/vda /disk; then echo "GUEST-SNAP-MOUNT failed"; exit 1; fi
rm -f /disk/counter.log
n=0
until ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1 || [ $n -ge 60 ]; do n=$((n + 1)); sleep 0.5; done
if ping -c 1 -W 2 10.0.2.2 >/dev/null 2>&1; then echo "GUEST-SNAP-PING-BEFORE ok"; else echo "GUEST-SNAP-PING-BEFORE failed"; fi
i=0
while [ $i -lt 40 ]; do
    read -r up _ </proc/uptime
    echo "$i $up" >>/disk/counter.log
    echo "GUEST-SNAP-TICK $i $up"
    i=$((i + 1))
    sleep 0.5
done
sync
echo 3 >/proc/sys/vm/drop_caches
awk 'BEGIN { ok = 1; last = -1 } { if ($1 != NR - 1 || $2 < last) ok = 0; last = $2 }
     END { print "GUEST-SNAP-FILE " (ok ? "ok" : "broken") " " NR }' /disk/counter.log
n=0
until ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1 || [ $n -ge 30 ]; do n=$((n + 1)); sleep 0.5; done
if ping -c 2 -W 2 10.0.2.2 >/dev/null 2>&1; then echo "GUEST-SNAP-PING-AFTER ok"; else echo "GUEST-SNAP-PING-AFTER failed"; fi
umount /disk
