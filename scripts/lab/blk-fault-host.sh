#!/bin/sh
# The host side of the blk-fault lab scenario (outer VM, busybox ash; installed there as blk-fault-host):
#
#   blk-fault-host <VMM arguments...>
#
# Makes the two faulty disks of the guest test blk-fault.sh: /tmp/full/disk.img, a 16 MiB sparse file on a 4 MiB
# tmpfs (ENOSPC), and /dev/mapper/svflaky, a device-mapper linear map over a loop device (EIO once its table is
# "error"). Runs the VMM with them (-drive full and flaky, QMP on /tmp/fault-qmp.sock), keeps a QMP client connected
# for the events, clears each fault when the guest asks, and after the VM prints the VMM's output, the events
# (HOST-QMP-EVENT) and whether the VMM was still running when the guest powered off.
set -u
out=/tmp/fault.out err=/tmp/fault.err events=/tmp/fault-events.out qmp=/tmp/fault-qmp.sock
rm -f "$out" "$events" "$qmp" /tmp/flaky.img
mkdir -p /tmp/full
mount -t tmpfs -o size=4m tmpfs /tmp/full || exit 2
truncate -s 16M /tmp/full/disk.img
truncate -s 16M /tmp/flaky.img
loop=$(losetup -f) && losetup "$loop" /tmp/flaky.img || exit 2
sectors=32768
table() { dmsetup suspend svflaky && dmsetup load svflaky --table "0 $sectors $1" && dmsetup resume svflaky; }
dmsetup create svflaky --table "0 $sectors linear $loop 0" || exit 2
[ -b /dev/mapper/svflaky ] || dmsetup mknodes svflaky

"$VMM" "$@" -qmp "unix:$qmp,server,nowait" \
    -drive id=full,file=/tmp/full/disk.img,direct=off -device virtio-blk-device,drive=full,id=full,serial=full \
    -drive id=flaky,file=/dev/mapper/svflaky -device virtio-blk-device,drive=flaky,id=flaky,serial=flaky \
    </dev/null >"$out" 2>"$err" &
vmm=$!
n=0
until [ -S "$qmp" ] || [ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done
qmp-send "$qmp" --wait-event SHUTDOWN >"$events" 2>&1 &
# Waits until the VM's output has the line <marker>; false when the VMM ended first.
await() {
    until grep -q "$1" "$out"; do
        kill -0 $vmm 2>/dev/null || return 1
        sleep 0.2
    done
}
await GUEST-FAULT-ENOSPC-WAIT && mount -o remount,size=32m /tmp/full && echo "HOST-FAULT-ENOSPC cleared" >>/tmp/fault-host.out
await GUEST-FAULT-EIO-ARM && table error && echo "HOST-FAULT-EIO armed" >>/tmp/fault-host.out
await GUEST-FAULT-EIO-WAIT && table "linear $loop 0" && echo "HOST-FAULT-EIO cleared" >>/tmp/fault-host.out
wait $vmm
rc=$?
wait
tr -d '\r' <"$out"
cat "$err"
cat /tmp/fault-host.out 2>/dev/null
tr -d '\r' <"$events" | grep -o '"event": *"[A-Z_]*".*' | sed 's/^/HOST-QMP-EVENT /'
dmsetup remove svflaky
losetup -d "$loop"
umount /tmp/full
rm -f /tmp/flaky.img /tmp/fault-host.out "$err" "$events" "$qmp"
exit $rc
