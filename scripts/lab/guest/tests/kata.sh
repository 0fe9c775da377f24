# kata: the guest of a VM started with Kata Containers' command line, which has no serial port; the console is
# hvc0 on the socket chardev Kata calls console.socket, where the host's Kata client reads these markers. /init's
# own output went to a /dev/console that did not exist yet, so this script writes to /dev/hvc0 itself.
# The client hotplugs a raw disk into mmio slot 0 (vda) that starts with KATA-HOTPLUG-DISK; the guest waits for
# it to get a size, reads its head, then waits for the unplug to take it away again. The host ends the VM with
# SIGKILL, so this script does not return.
n=0
until [ -c /dev/hvc0 ] || [ $n -ge 100 ]; do n=$((n + 1)); sleep 0.1; done
exec >/dev/hvc0 2>&1
# hvc0 is also the kernel's console: keep its messages (a hotplugged disk's size) from splitting these lines.
dmesg -n 1
echo "GUEST-KATA-HVC0 ok"
echo "GUEST-KATA-CMDLINE $(cat /proc/cmdline)"
# Kata's shared filesystem: virtio-fs with the tag Kata gives it.
mkdir -p /mnt/kata
if mount -t virtiofs kataShared /mnt/kata; then echo "GUEST-KATA-FS-MOUNT ok"; else echo "GUEST-KATA-FS-MOUNT failed"; fi
echo "GUEST-KATA-FS-READ $(cat /mnt/kata/host.txt 2>/dev/null)"
echo "from-the-kata-guest" >/mnt/kata/guest.txt && sync && umount /mnt/kata && echo "GUEST-KATA-FS-WRITE ok"
sectors() { cat /sys/block/vda/size 2>/dev/null || echo 0; }
n=0
until [ "$(sectors)" -gt 0 ] || [ $n -ge 1800 ]; do n=$((n + 1)); sleep 0.1; done
echo "GUEST-KATA-VDA-SECTORS $(sectors)"
echo "GUEST-KATA-VDA-HEAD $(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 17)"
n=0
until [ "$(sectors)" -eq 0 ] || [ $n -ge 1800 ]; do n=$((n + 1)); sleep 0.1; done
echo "GUEST-KATA-VDA-GONE sectors=$(sectors)"
while :; do sleep 60; done
