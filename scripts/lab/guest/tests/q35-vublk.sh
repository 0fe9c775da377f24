# vhost-user-blk-pci on a q35 (host side: Q35Scenarios.cs). With lab.vublk=cold on the command line the disk was
# given with -device at start-up: the guest checks it as below and ends. Otherwise it is hot-plugged into a root
# port (with fast unplug): once the guest says it is ready the host adds a chardev for qemu-storage-daemon's socket
# and plugs a vhost-user-blk-pci behind the empty port. The guest reads the image's known head, writes 1 MiB at
# 1 MiB and reads it back past its cache. The host unplugs it (device_del) and removes the chardev; once the
# function is gone the host adds both again, and the guest reads the MiB through the new connection.
. /tests/wait-for.sh
if grep -q 'lab.vublk=cold' /proc/cmdline; then
    wait_for /sys/block/vda || { echo "GUEST-Q35VUBLK-ERROR the cold-plugged disk is missing"; exit 1; }
else
    echo "GUEST-Q35VUBLK-READY"
    wait_for /sys/block/vda || { echo "GUEST-Q35VUBLK-ERROR the hot-plugged disk did not appear"; exit 1; }
    sleep 2  # the kernel's messages about the new function, which would cut into the marker lines
fi
fn=$(pci_of /sys/block/vda)
d=/sys/bus/pci/devices/$fn
echo "GUEST-Q35VUBLK-PCI $fn $(cat "$d/vendor"):$(cat "$d/device") driver=$(basename "$(readlink "$d/driver")")"
echo "GUEST-Q35VUBLK-SECTORS $(cat /sys/block/vda/size)"
echo "GUEST-Q35VUBLK-HEAD $(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 21)"
dd if=/dev/urandom of=/tmp/chunk bs=1M count=1 2>/dev/null
if dd if=/tmp/chunk of=/dev/vda bs=1M seek=1 count=1 conv=fsync 2>/dev/null; then echo "GUEST-Q35VUBLK-WRITE ok"; else echo "GUEST-Q35VUBLK-WRITE failed"; fi
echo "GUEST-Q35VUBLK-WRITTEN $(sha256sum /tmp/chunk | cut -d' ' -f1)"
# drop_caches logs a line on the console, which can cut into a marker line still on its way out: logged here below
# the console's level.
level=$(cut -f1 /proc/sys/kernel/printk)
echo 1 >/proc/sys/kernel/printk
echo 3 >/proc/sys/vm/drop_caches
echo "$level" >/proc/sys/kernel/printk
echo "GUEST-Q35VUBLK-READ $(dd if=/dev/vda bs=1M skip=1 count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
grep -E 'pciehp|virtio' /proc/interrupts | tr -s ' ' | while read -r line; do echo "GUEST-Q35VUBLK-IRQ $line"; done
grep -q 'lab.vublk=cold' /proc/cmdline && exit 0
echo "GUEST-Q35VUBLK-PLUGGED"
wait_for /sys/block/vda gone || { echo "GUEST-Q35VUBLK-ERROR the disk was not unplugged"; exit 1; }
wait_for "$d" gone || { echo "GUEST-Q35VUBLK-ERROR the function stayed"; exit 1; }
echo "GUEST-Q35VUBLK-UNPLUGGED $(ls /sys/bus/pci/devices | tr '\n' ' ')"
wait_for /sys/block/vda || { echo "GUEST-Q35VUBLK-ERROR the disk plugged again did not appear"; exit 1; }
sleep 2
echo "GUEST-Q35VUBLK-REPLUGGED $(pci_of /sys/block/vda)"
echo "GUEST-Q35VUBLK-REREAD $(dd if=/dev/vda bs=1M skip=1 count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
