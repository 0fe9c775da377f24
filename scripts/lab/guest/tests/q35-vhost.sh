# vhost devices on the q35 standard VM: vhost-user-fs-pci (virtiofsd) and vhost-vsock-pci (the host kernel's
# vhost-vsock). The functions and their drivers, the virtio-fs round trip of virtiofs.sh, the guest's CID, and the
# interrupt lines the devices got.
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = 0x1af4 ] || continue
    echo "GUEST-Q35VH-PCI $(basename "$d") $(cat "$d/device") driver=$(basename "$(readlink "$d/driver")")"
done
. /tests/virtiofs.sh
echo "GUEST-Q35VH-VSOCK $(ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport 2>/dev/null | grep -c virtio)"
grep virtio /proc/interrupts | tr -s ' ' | while read -r line; do echo "GUEST-Q35VH-IRQ $line"; done
