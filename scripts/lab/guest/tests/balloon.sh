# virtio-balloon: touch 150 MiB (a tmpfs file, then deleted) so that the VMM's RSS grows and the guest has free
# pages to give back; the scenario's host side then inflates the balloon through QMP, measures, and quits.
mkdir -p /tmp/fill
mount -t tmpfs -o size=200m tmpfs /tmp/fill
dd if=/dev/zero of=/tmp/fill/x bs=1M count=150 2>/dev/null
rm /tmp/fill/x
echo "GUEST-BALLOON-FILLED"
sleep 300
