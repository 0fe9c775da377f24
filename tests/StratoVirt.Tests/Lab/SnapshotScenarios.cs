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

    /// <summary>Templates, in a network namespace of its own: VM 0 boots the guest test template.sh and is
    /// snapshotted while it waits for a name on its console; three clones are restored from that one snapshot at the
    /// same time, clone n with its own copy of the disk (disk{n}.img, copied after the snapshot), tap{n} and
    /// qmp{n}.sock, and is typed the name vm{n}. Prints the QMP replies (HOST-TMPL-*), VM 0's and each clone's memory
    /// (smaps_rollup, KiB) while all three clones run, each clone's exit status and the file each left on its disk,
    /// then every VMM's output as VM{n}| lines.</summary>
    private const string TemplateHost = """
        cat >/tmp/lab-template-host.sh <<'TMPLHOST'
        ip link set lo up
        rm -rf /tmp/tmpl
        mkdir -p /tmp/tmpl/dir
        cd /tmp/tmpl
        cp /lab/rootfs.ext4 disk0.img
        wait_for() {  # wait_for <fixed string> <file> <pid>
            w=0
            until grep -qF "$1" "$2" || ! kill -0 "$3" 2>/dev/null || [ $w -ge 1500 ]; do sleep 0.2; w=$((w + 1)); done
        }
        # vm <n> [args]: a VMM with disk<n>.img, tap<n> and qmp<n>.sock; its console input is the FIFO in<n>, held
        # open here on fd 3+n so that opening it never blocks, its output out<n>. Sets pid<n>.
        vm() {
            v=$1
            shift
            mkfifo in$v
            eval "exec $((v + 3))<>in$v"
            "$VMM" -machine microvm -kernel "$KERNEL" -initrd "$INITRD" \
                -append "console=ttyS0 reboot=k panic=1 lab.action=test lab.test=template" -m 256 -smp 1 -serial stdio \
                -drive id=disk,file=/tmp/tmpl/disk$v.img -device virtio-blk-device,drive=disk,id=blk0 \
                -netdev tap,id=net0,ifname=tap$v -device virtio-net-device,netdev=net0,id=eth0,mac=02:00:00:00:00:10 \
                -qmp unix:/tmp/tmpl/qmp$v.sock,server,nowait "$@" <in$v >out$v 2>&1 &
            eval "pid$v=\$!"
        }
        mem() {  # mem <pid>: its Rss, Pss, shared and private KiB (a tmpfs file's pages count as dirty)
            awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Shared_(Clean|Dirty):/ { s += $2 } /^Private_(Clean|Dirty):/ { v += $2 }
                 END { print "rss=" r " pss=" p " shared=" s " private=" v }' /proc/$1/smaps_rollup
        }
        vm 0
        wait_for "GUEST-TMPL-READY" out0 $pid0
        wait_for "GUEST-TMPL-TICK 4 " out0 $pid0
        echo "HOST-TMPL-TEMPLATE $(mem $pid0)"
        echo "HOST-TMPL-STOP $(qmp-send qmp0.sock '{"execute":"stop"}' | tr '\n' ' ')"
        echo "HOST-TMPL-MIGRATE $(qmp-send qmp0.sock '{"execute":"migrate","arguments":{"uri":"file:/tmp/tmpl/dir"}}' '{"execute":"query-migrate"}' | tr '\n' ' ')"
        kill -KILL $pid0
        wait $pid0
        for n in 1 2 3; do cp disk0.img disk$n.img; done
        for n in 1 2 3; do vm $n -incoming file:/tmp/tmpl/dir; done
        for n in 1 2 3; do
            eval "p=\$pid$n"
            wait_for "GUEST-TMPL-TICK" out$n $p
            echo "vm$n" >in$n
        done
        for n in 1 2 3; do eval "p=\$pid$n"; wait_for "GUEST-TMPL-WROTE" out$n $p; done
        for n in 1 2 3; do eval "p=\$pid$n"; echo "HOST-TMPL-CLONE vm$n $(mem $p)"; done
        for n in 1 2 3; do echo end >in$n; done
        rc=0
        for n in 1 2 3; do
            eval "p=\$pid$n"
            wait $p
            r=$?
            echo "HOST-TMPL-EXIT vm$n $r"
            [ $r -eq 0 ] || rc=1
        done
        for n in 1 2 3; do
            mkdir -p m$n
            if mount -o ro,loop disk$n.img m$n; then
                echo "HOST-TMPL-FILE vm$n $(cat m$n/clone.txt)"
                umount m$n
            else
                echo "HOST-TMPL-FILE vm$n unmountable"
            fi
        done
        for n in 0 1 2 3; do tr -d '\r' <out$n | sed "s/^/VM$n|/"; done
        cd /
        rm -rf /tmp/tmpl
        exit $rc
        TMPLHOST
        """;

    public static readonly string[] Lines =
    [
        Host,
        TemplateHost,
        "scenario snapshot-template 300 unshare -n env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-template-host.sh",
        "scenario snapshot-linux 420 unshare -n env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-snapshot-host.sh " +
        "-machine microvm -kernel \"$KERNEL\" -initrd \"$INITRD\" " +
        "-append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=snapshot\" -m 256 -smp 2 -serial stdio " +
        "-name snapshot -D -drive id=disk,file=/tmp/snap/disk.img -device virtio-blk-device,drive=disk,id=blk0 " +
        "-netdev tap,id=net0,ifname=tap0 -device virtio-net-device,netdev=net0,id=eth0 " +
        "-qmp unix:/tmp/snap/qmp.sock,server,nowait",
    ];
}
