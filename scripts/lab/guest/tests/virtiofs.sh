# virtio-fs through vhost-user-fs-device and virtiofsd: mounts the tag labfs, reads the text and the 1 MiB file
# the host wrote, writes a text and 1 MiB of its own for the host to read after the VM, and unmounts.
mkdir -p /mnt/fs
if mount -t virtiofs labfs /mnt/fs; then echo "GUEST-FS-MOUNT ok"; else echo "GUEST-FS-MOUNT failed"; fi
echo "GUEST-FS-FROM-HOST $(cat /mnt/fs/from-host.txt 2>/dev/null)"
echo "GUEST-FS-HOST-BIN $(sha256sum /mnt/fs/host.bin 2>/dev/null | cut -d' ' -f1)"
echo "written-by-the-guest" >/mnt/fs/from-guest.txt
dd if=/dev/urandom of=/mnt/fs/from-guest.bin bs=64k count=16 2>/dev/null
sync
echo "GUEST-FS-WROTE $(sha256sum /mnt/fs/from-guest.bin 2>/dev/null | cut -d' ' -f1)"
umount /mnt/fs && echo "GUEST-FS-UMOUNT ok"
