# virtio-blk: / is ext4 on /dev/vda (root=/dev/vda); /dev/vdb is a read-only raw drive whose first bytes the host
# wrote. Writes 64 MiB, syncs, checksums, remounts read-only, drops caches, checksums again.
echo "GUEST-BLK-VDA-SERIAL $(cat /sys/block/vda/serial 2>/dev/null)"
echo "GUEST-BLK-VDB-RO $(cat /sys/block/vdb/ro 2>/dev/null)"
echo "GUEST-BLK-VDB-SECTORS $(cat /sys/block/vdb/size 2>/dev/null)"
echo "GUEST-BLK-VDB-HEAD $(dd if=/dev/vdb bs=512 count=1 2>/dev/null | head -c 18)"
dd if=/dev/urandom of=/data.bin bs=1M count=64 2>/dev/null
sync
echo "GUEST-BLK-WRITTEN $(wc -c </data.bin) $(sha256sum /data.bin | cut -d' ' -f1)"
mount -o remount,ro / && echo "GUEST-BLK-REMOUNT-RO ok"
echo 3 >/proc/sys/vm/drop_caches
echo "GUEST-BLK-REREAD $(sha256sum /data.bin | cut -d' ' -f1)"
if touch /should-not-exist 2>/dev/null; then echo "GUEST-BLK-ROFS-WRITE allowed"; else echo "GUEST-BLK-ROFS-WRITE refused"; fi
# Writing the read-only drive: the kernel refuses while the disk is marked read-only; forced writable, the device
# must fail the request itself.
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; then echo "GUEST-BLK-VDB-WRITE allowed"; else echo "GUEST-BLK-VDB-WRITE refused"; fi
blockdev --setrw /dev/vdb 2>/dev/null
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; then echo "GUEST-BLK-VDB-FORCED-WRITE allowed"; else echo "GUEST-BLK-VDB-FORCED-WRITE refused"; fi
mount -o remount,rw / 2>/dev/null
