# Host side of one bench/virtio-io.sh run, in the lab's outer VM (busybox sh), inside a network namespace of its
# own (the scenario runs it under unshare -n), copied there as /lab/virtio-io-host.sh:
#
#   unshare -n sh /lab/virtio-io-host.sh <ours|qemu|ours-vhost|qemu-vhost> <scenario-name> <tap> <guest-cmdline>
#                                        [microvm|q35]
#
# microvm (the default) puts the devices on virtio-mmio, q35 on virtio-pci functions of pcie.0.
# The -vhost kinds have no disk and put the net device's queues on the host kernel's vhost-net (vhost=on).
#
# Creates a fresh sparse 256 MiB raw scratch disk in /tmp, serves /tmp/vio-www (the scenario file puts the blob
# there) with busybox httpd on port 80, takes what the guest sends to port 5001 (/lab/tcpblast sink), gives <tap> 10.0.2.2/24 once the VMM has created it, and starts the VMM
# with one virtio-blk and one virtio-net device, 256 MiB and 2 vCPUs. While it runs it reads the VMM's
# /proc/<pid>/smaps twice: 2 s after the guest's GUEST-VIO-IDLE line (idle after boot) and 1 s after its
# GUEST-VIO-DONE line (after the I/O), and prints
#   HOST-VIO-RSS <idle|after-io> small_kb=<Rss of mappings < 128 MiB> total_kb=<all Rss>
# It follows the guest's output in /tmp/lab/<scenario-name>/out, which the lab's scenario helper writes.
# Exit status: the VMM's.
# shellcheck shell=sh

kind=$1 name=$2 tap=$3 cmdline=$4 machine=${5:-microvm}
out=/tmp/lab/$name/out
disk=/tmp/vio-$name.img
# Given to both VMMs. Without mac= ours draws a random one with .NET's RandomNumberGenerator, which loads libssl,
# and the lab's outer VM has none.
mac=52:54:00:12:34:56

rm -f "$disk"
truncate -s 256M "$disk" || { echo "HOST-VIO-ERROR cannot create $disk"; exit 1; }
# The transport: virtio-mmio devices on the microvm; on q35 virtio-pci functions (QEMU's without the legacy
# interface, as ours), the disk at 00:03.0 and the NIC at 00:04.0.
case "$machine" in
    microvm)
        blk=virtio-blk-device net=virtio-net-device blk_at='' net_at='' qemu_pci='' qemu_rom=''
        qemu_machine="microvm,acpi=on" qemu_mmio="-global virtio-mmio.force-legacy=false"
        ;;
    q35)
        # romfile=: no PXE option ROM for the NIC (a direct kernel boot needs none; ours has none).
        blk=virtio-blk-pci net=virtio-net-pci blk_at=",bus=pcie.0,addr=0x3" net_at=",bus=pcie.0,addr=0x4"
        qemu_pci=",disable-legacy=on" qemu_rom=",romfile=" qemu_machine=q35 qemu_mmio=''
        ;;
    *) echo "HOST-VIO-ERROR unknown machine '$machine'"; exit 2 ;;
esac
# Ours: a disk (-drive/-device) unless the run is a vhost-net one; QEMU the same, in its own spelling.
ours_disk="-drive id=d0,file=$disk,direct=off -device $blk,drive=d0,id=vda$blk_at"
qemu_disk="-drive id=d0,file=$disk,format=raw,if=none,cache=writeback -device $blk,drive=d0$blk_at$qemu_pci"
vhost=off
case "$kind" in
    *-vhost) ours_disk='' qemu_disk='' vhost=on kind=${kind%-vhost} ;;
esac
ip link set lo up
httpd -f -p 80 -h /tmp/vio-www &
httpd_pid=$!
/lab/tcpblast sink 5001 &
sink_pid=$!
(
    n=0
    until ip link show "$tap" >/dev/null 2>&1 || [ $n -ge 1200 ]; do sleep 0.1; n=$((n + 1)); done
    ip addr add 10.0.2.2/24 dev "$tap" && ip link set "$tap" up || echo "HOST-VIO-ERROR no $tap to configure"
) &
tap_pid=$!

case "$kind" in
    ours)
        STRATOVIRT_LOG_LEVEL=info "$VMM" -machine "$machine" -kernel "$KERNEL" -initrd "$INITRD" -append "$cmdline" \
            -m 256 -smp 2 -serial stdio -D $ours_disk \
            -netdev tap,id=n0,ifname="$tap",vhost=$vhost -device "$net,netdev=n0,id=eth0,mac=$mac$net_at" &
        ;;
    qemu)
        # microvm: acpi=on, the DSDT describes the virtio-mmio devices; force-legacy=false, virtio 1.x over
        # virtio-mmio version 2, the transport our VMM offers. q35 boots the kernel through SeaBIOS and its
        # linuxboot_dma option ROM (both in $QEMU_FW). cache=writeback is our direct=off (the host page cache).
        "$QEMU" -L "$QEMU_FW" -M "$qemu_machine" -enable-kvm -cpu host -m 256 -smp 2 -kernel "$KERNEL" \
            -initrd "$INITRD" -append "$cmdline" -nographic -no-reboot -nodefaults -serial stdio \
            $qemu_mmio $qemu_disk \
            -netdev tap,id=n0,ifname="$tap",script=no,downscript=no,vhost=$vhost \
            -device "$net,netdev=n0,mac=$mac$net_at$qemu_pci$qemu_rom" &
        ;;
    *)
        echo "HOST-VIO-ERROR unknown VMM kind '$kind'"
        exit 2
        ;;
esac
vmm=$!

# rss_after <marker> <label> <settle-s>: once the guest printed <marker>, waits <settle-s> and sums the smaps.
rss_after() {
    until grep -q "$1" "$out" 2>/dev/null; do
        kill -0 "$vmm" 2>/dev/null || return 0
        sleep 0.5
    done
    sleep "$3"
    kill -0 "$vmm" 2>/dev/null || { echo "HOST-VIO-ERROR the VMM ended before the $2 measurement"; return 0; }
    awk -v label="$2" '
        /^Size:/ { size = $2 }
        /^Rss:/ { total += $2; if (size < 131072) small += $2 }
        END { printf "HOST-VIO-RSS %s small_kb=%d total_kb=%d\n", label, small, total }' "/proc/$vmm/smaps"
}
rss_after GUEST-VIO-IDLE idle 2
rss_after GUEST-VIO-DONE after-io 1

wait "$vmm"
rc=$?
kill "$httpd_pid" "$tap_pid" "$sink_pid" 2>/dev/null
wait "$httpd_pid" "$tap_pid" "$sink_pid" 2>/dev/null
rm -f "$disk"
exit "$rc"
