# vhost-net behind virtio-net-pci on a q35 (host side: Q35Scenarios.cs): the microVM's net test (ping, 16 MiB
# each way), then the NIC's function and the interrupt lines its driver got.
. /tests/wait-for.sh
sh /tests/net.sh
fn=$(pci_of /sys/class/net/eth0)
d=/sys/bus/pci/devices/$fn
echo "GUEST-Q35VN-PCI $fn $(cat "$d/vendor"):$(cat "$d/device") driver=$(basename "$(readlink "$d/driver")")"
grep virtio /proc/interrupts | tr -s ' ' | while read -r line; do echo "GUEST-Q35VN-IRQ $line"; done
