# Which virtio devices the guest found, and through which discovery path (ACPI LNRO0005 or virtio_mmio.device=).
for d in /sys/bus/virtio/devices/*; do
    [ -e "$d" ] || continue
    echo "GUEST-VIRTIO $(basename "$d") device=$(cat "$d/device") driver=$(basename "$(readlink "$d/driver")")"
done
ls /sys/bus/acpi/devices 2>/dev/null | grep -c LNRO0005 | sed 's/^/GUEST-ACPI-VIRTIO /'
