# Hotplug (host side: HotplugScenarios.cs): the VM boots with -qmp and no drives, so vda-vdd are the four empty
# block slots (size 0). The host plugs an ext4 image into slot 1 (vdb); the guest mounts it, writes a file and
# unmounts; the host unplugs it (size 0 again) and plugs it back; the guest reads the file back.
size() { cat /sys/block/vdb/size 2>/dev/null || echo missing; }
wait_size() {  # wait_size nonzero|zero: up to 180 s
    n=0
    while [ $n -lt 900 ]; do
        s=$(size)
        case "$1:$s" in
            nonzero:0 | nonzero:missing | zero:[1-9]*) ;;
            *) return 0 ;;
        esac
        sleep 0.2
        n=$((n + 1))
    done
    return 1
}
echo "GUEST-HOTPLUG-SIZES $(cat /sys/block/vda/size /sys/block/vdb/size /sys/block/vdc/size /sys/block/vdd/size 2>/dev/null | tr '\n' ' ')"
# carrier reads only on an interface that is up; an empty net slot's link is down.
ip link set eth0 up 2>/dev/null
echo "GUEST-HOTPLUG-LINK $(cat /sys/class/net/eth0/carrier 2>/dev/null || echo none)"
echo "GUEST-HOTPLUG-READY"
wait_size nonzero || { echo "GUEST-HOTPLUG-ERROR no disk appeared"; exit 1; }
echo "GUEST-HOTPLUG-PLUGGED $(size)"
mkdir -p /mnt
mount -t ext4 /dev/vdb /mnt || { echo "GUEST-HOTPLUG-ERROR mount failed"; exit 1; }
echo "written-through-a-hotplugged-disk" >/mnt/hello
sync
umount /mnt
echo "GUEST-HOTPLUG-UNMOUNTED"
wait_size zero || { echo "GUEST-HOTPLUG-ERROR the disk did not go away"; exit 1; }
echo "GUEST-HOTPLUG-EMPTY $(size)"
echo "GUEST-HOTPLUG-EMPTY-BYTES $(dd if=/dev/vdb bs=512 count=1 2>/dev/null | wc -c)"
wait_size nonzero || { echo "GUEST-HOTPLUG-ERROR no disk after the replug"; exit 1; }
echo "GUEST-HOTPLUG-REPLUGGED $(size)"
echo 3 >/proc/sys/vm/drop_caches
mount -t ext4 /dev/vdb /mnt || { echo "GUEST-HOTPLUG-ERROR mount after the replug failed"; exit 1; }
echo "GUEST-HOTPLUG-READBACK $(cat /mnt/hello)"
umount /mnt
