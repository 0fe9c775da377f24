# vhost-user-blk through qemu-storage-daemon's export: /dev/vda is its 80 MiB raw image. Writes 64 MiB of random
# data to it, syncs, drops the caches and reads it back; the host hashes the image's first 64 MiB after the VM.
echo "GUEST-VUBLK-SECTORS $(cat /sys/block/vda/size 2>/dev/null)"
dd if=/dev/urandom of=/tmp/vublk.src bs=1M count=64 2>/dev/null
echo "GUEST-VUBLK-WRITTEN $(sha256sum /tmp/vublk.src | cut -d' ' -f1)"
if dd if=/tmp/vublk.src of=/dev/vda bs=1M conv=fsync 2>/dev/null; then echo "GUEST-VUBLK-WRITE ok"; else echo "GUEST-VUBLK-WRITE failed"; fi
rm -f /tmp/vublk.src
sync
echo 3 >/proc/sys/vm/drop_caches
echo "GUEST-VUBLK-REREAD $(dd if=/dev/vda bs=1M count=64 2>/dev/null | sha256sum | cut -d' ' -f1)"
