namespace StratoVirt.Tests.Lab;

/// <summary>Snapshot and restore of a real Linux guest with a disk, a tap and the serial console (guest test
/// snapshot.sh): the host pauses it mid-count, migrates it to a directory, SIGKILLs the VMM and restores it with
/// -incoming; the guest's counter, uptime, file and network must carry on.</summary>
public static class SnapshotScenarios
{
    /// <summary>The host side, in a network namespace of its own: the disk is a copy of the lab's ext4 image; tap0 is
    /// 10.0.2.2 with a fixed MAC each time the VMM makes it (the guest's ARP entry outlives the killed VMM's tap).
    /// Prints the QMP replies (HOST-SNAP-*), then the first VMM's output as BEFORE| lines and the restored one's
    /// as AFTER| lines.</summary>
    private const string Host = """
        cat >/tmp/lab-snapshot-host.sh <<'SNAPHOST'
        ip link set lo up
        rm -rf /tmp/snap
        mkdir -p /tmp/snap/dir
        cp /lab/rootfs.ext4 /tmp/snap/disk.img
        cd /tmp/snap
        tap_up() {
            n=0
            until ip link show tap0 >/dev/null 2>&1 || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
            ip link set tap0 address 02:00:00:00:00:02
            ip addr add 10.0.2.2/24 dev tap0
            ip link set tap0 up
        }
        wait_for() {  # wait_for <pattern> <file> <pid>
            n=0
            until grep -q "$1" "$2" || ! kill -0 "$3" 2>/dev/null || [ $n -ge 1500 ]; do sleep 0.2; n=$((n + 1)); done
        }
        "$VMM" "$@" </dev/null >out1 2>&1 &
        vmm=$!
        tap_up
        wait_for "GUEST-SNAP-TICK 8 " out1 $vmm
        echo "HOST-SNAP-STOP $(qmp-send qmp.sock '{"execute":"stop"}' | tr '\n' ' ')"
        echo "HOST-SNAP-MIGRATE $(qmp-send qmp.sock '{"execute":"migrate","arguments":{"uri":"file:/tmp/snap/dir"}}' '{"execute":"query-migrate"}' | tr '\n' ' ')"
        kill -KILL $vmm
        wait $vmm
        echo "HOST-SNAP-KILLED $?"
        "$VMM" "$@" -incoming file:/tmp/snap/dir </dev/null >out2 2>&1 &
        vmm=$!
        tap_up
        wait_for "GUEST-SNAP-TICK" out2 $vmm
        echo "HOST-SNAP-RESTORED $(qmp-send qmp.sock '{"execute":"query-status"}' | tr '\n' ' ')"
        wait $vmm
        rc=$?
        echo "HOST-SNAP-VMM-EXIT $rc"
        tr -d '\r' <out1 | sed 's/^/BEFORE|/'
        tr -d '\r' <out2 | sed 's/^/AFTER|/'
        cd /
        rm -rf /tmp/snap
        exit $rc
        SNAPHOST
        """;

    public static readonly string[] Lines =
    [
        Host,
        "scenario snapshot-linux 420 unshare -n env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-snapshot-host.sh " +
        "-machine microvm -kernel \"$KERNEL\" -initrd \"$INITRD\" " +
        "-append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=snapshot\" -m 256 -smp 2 -serial stdio " +
        "-name snapshot -D -drive id=disk,file=/tmp/snap/disk.img -device virtio-blk-device,drive=disk,id=blk0 " +
        "-netdev tap,id=net0,ifname=tap0 -device virtio-net-device,netdev=net0,id=eth0 " +
        "-qmp unix:/tmp/snap/qmp.sock,server,nowait",
    ];
}
