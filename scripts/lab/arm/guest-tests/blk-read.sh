#!/bin/sh
# The first virtio-blk disk, read whole: GUEST-BLK-SHA256 <sha256 of /dev/vda>.
n=0
until [ -b /dev/vda ] || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
echo "GUEST-BLK-SHA256 $(sha256sum /dev/vda | cut -d' ' -f1)"
