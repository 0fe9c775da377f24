#!/bin/sh
# Block hotplug: with a QMP monitor, block slot 1 (/dev/vdb) starts empty (0 sectors); the host plugs a raw image
# into it (blockdev-add, device_add) after GUEST-HP-READY. Prints its size before and after and its sha256.
n=0
until [ -b /dev/vdb ] || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
echo "GUEST-HP-EMPTY-SECTORS $(cat /sys/block/vdb/size 2>/dev/null)"
echo "GUEST-HP-READY"
n=0
until [ "$(cat /sys/block/vdb/size 2>/dev/null)" != 0 ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
echo "GUEST-HP-SECTORS $(cat /sys/block/vdb/size 2>/dev/null)"
echo "GUEST-HP-SHA256 $(sha256sum /dev/vdb | cut -d' ' -f1)"
