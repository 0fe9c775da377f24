# PCIe native hotplug on the q35 machine (host side: Q35Scenarios.cs). Three root ports: pcie.1 with a disk
# cold-plugged behind it (/dev/vda), pcie.2 and pcie.3 empty. Once the guest says it is ready the host plugs a
# disk into pcie.2 and a NIC into pcie.3 over QMP; pciehp powers the slots on and the guest reads the disk's known
# head and pings the host through the NIC. Then the host unplugs the disk (device_del): after the attention
# button's delay the guest releases it and powers the slot off, and the function leaves /sys/bus/pci/devices.
. /tests/wait-for.sh
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/class")" = 0x060400 ] || continue
    echo "GUEST-Q35HP-PORT $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device") driver=$(basename "$(readlink "$d/driver")")"
done
echo "GUEST-Q35HP-SLOTS $(ls /sys/bus/pci/slots | tr '\n' ' ')"
echo "GUEST-Q35HP-COLD-PCI $(pci_of /sys/block/vda)"
echo "GUEST-Q35HP-COLD-HEAD $(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 20)"
ip link set lo up
echo "GUEST-Q35HP-READY"
wait_for /sys/block/vdb || { echo "GUEST-Q35HP-ERROR the hot-plugged disk did not appear"; exit 1; }
wait_for /sys/class/net/eth0 || { echo "GUEST-Q35HP-ERROR the hot-plugged NIC did not appear"; exit 1; }
sleep 2  # the kernel's messages about the new bridges and devices, which would cut into the marker lines
hot=$(pci_of /sys/block/vdb)
echo "GUEST-Q35HP-HOT-PCI $hot"
echo "GUEST-Q35HP-HOT-HEAD $(dd if=/dev/vdb bs=512 count=1 2>/dev/null | head -c 19)"
echo "GUEST-Q35HP-NET-PCI $(pci_of /sys/class/net/eth0)"
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ping -c 3 -W 5 10.0.2.2 >/dev/null 2>&1
echo "GUEST-Q35HP-PING rc=$?"
grep -E 'pciehp|virtio' /proc/interrupts | tr -s ' ' | while read -r line; do echo "GUEST-Q35HP-IRQ $line"; done
echo "GUEST-Q35HP-PLUGGED"
wait_for /sys/block/vdb gone || { echo "GUEST-Q35HP-ERROR the disk was not unplugged"; exit 1; }
wait_for "/sys/bus/pci/devices/$hot" gone
sleep 1
if [ -e "/sys/bus/pci/devices/$hot" ]; then echo "GUEST-Q35HP-UNPLUGGED present"; else echo "GUEST-Q35HP-UNPLUGGED gone"; fi
echo "GUEST-Q35HP-AFTER $(ls /sys/bus/pci/devices | tr '\n' ' ')"
