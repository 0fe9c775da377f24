# virtio-pci on the q35 standard VM: the functions on pcie.0, a block device (a known head written by the host,
# then 1 MiB written, synced, dropped from the cache and read back), the NIC pinging its host tap, the rng read
# through /dev/hwrng, and the interrupt lines the devices got (MSI-X, or INTx on the IOAPIC with pci=nomsi).
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = 0x1af4 ] || continue
    echo "GUEST-Q35V-PCI $(basename "$d") $(cat "$d/device") driver=$(basename "$(readlink "$d/driver")") irq=$(cat "$d/irq")"
done
echo "GUEST-Q35V-BLK-HEAD $(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 18)"
dd if=/dev/urandom of=/tmp/chunk bs=1M count=1 2>/dev/null
dd if=/tmp/chunk of=/dev/vda bs=1M seek=1 count=1 conv=fsync 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
echo "GUEST-Q35V-BLK-WROTE $(sha256sum /tmp/chunk | cut -d' ' -f1)"
echo "GUEST-Q35V-BLK-READ $(dd if=/dev/vda bs=1M skip=1 count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
n=0
until ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1 || [ $n -ge 30 ]; do n=$((n + 1)); done
if ping -c 3 -W 2 10.0.2.2 >/dev/null 2>&1; then echo "GUEST-Q35V-PING ok"; else echo "GUEST-Q35V-PING failed"; fi
echo "GUEST-Q35V-RNG $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null) $(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c)"
grep virtio /proc/interrupts | tr -s ' ' | while read -r line; do echo "GUEST-Q35V-IRQ $line"; done
