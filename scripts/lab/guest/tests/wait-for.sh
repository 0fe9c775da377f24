# Sourced by the PCIe hotplug tests (not a test itself): waiting for a hot-plugged device to come or go, and the
# PCI function behind a sysfs device.
wait_for() {  # wait_for <path> [gone]: up to 180 s
    n=0
    if [ "$2" = gone ]; then
        until [ ! -e "$1" ] || [ $n -ge 900 ]; do sleep 0.2; n=$((n + 1)); done
        [ ! -e "$1" ]
    else
        until [ -e "$1" ] || [ $n -ge 900 ]; do sleep 0.2; n=$((n + 1)); done
        [ -e "$1" ]
    fi
}
pci_of() { readlink -f "$1" | sed -n 's#.*/\([^/]*\)/virtio[0-9]*/.*#\1#p'; }  # the function above virtio<n>, on pcie.0 or behind a port
