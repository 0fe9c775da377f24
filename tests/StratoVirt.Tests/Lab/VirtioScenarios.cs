namespace StratoVirt.Tests.Lab;

/// <summary>Linux guests in the nested lab that use virtio devices; each runs one /tests/&lt;name&gt;.sh of the guest
/// initramfs (scripts/lab/guest/tests) and powers off.</summary>
public static class VirtioScenarios
{
    /// <summary>The ext4 image of the guest tree that LabSession adds to the lab (as /lab/rootfs.ext4).</summary>
    public const string RootImage = "rootfs.ext4";

    /// <summary>Its size in MiB: room for the 64 MiB write test.</summary>
    public const int RootImageMiB = 160;

    internal static string Guest(string name, string test, string devices, string append = "", int memoryMiB = 256,
        string vmm = "\"$VMM\"", int timeout = 240, string kernel = "\"$KERNEL\"", string initrd = "\"$INITRD\"") =>
        $"scenario {name} {timeout} env STRATOVIRT_LOG_LEVEL=info {vmm} -machine microvm -kernel {kernel} " +
        $"-initrd {initrd} -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test={test}{append}\" " +
        $"-m {memoryMiB} -smp 2 -serial stdio -name {name} -D {devices}";

    /// <summary>The host side of the net scenario, run in a network namespace of its own (unshare -n): once the
    /// VMM has created tap0 it gets 10.0.2.2, serves a 16 MiB /blob over HTTP, and fetches the guest's /blob.</summary>
    internal const string NetHost = """
        cat >/tmp/lab-net-host.sh <<'NETHOST'
        ip link set lo up
        mkdir -p /tmp/www
        rm -f /tmp/net-got /tmp/net-vmm-gone
        dd if=/dev/urandom of=/tmp/www/blob bs=1M count=16 2>/dev/null
        echo "HOST-NET-SERVING $(sha256sum /tmp/www/blob | cut -d' ' -f1)"
        (
            n=0
            until ip link show tap0 >/dev/null 2>&1 || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
            ip addr add 10.0.2.2/24 dev tap0
            ip link set tap0 up
            httpd -p 10.0.2.2:80 -h /tmp/www
            n=0
            until timeout 120 wget -q -O /tmp/from-guest http://10.0.2.15:8080/blob 2>/dev/null || [ -e /tmp/net-vmm-gone ] ||
                [ $n -ge 240 ]; do
                sleep 1
                n=$((n + 1))
            done
            # Kept for after the VM: while it runs, its console shares this output and can split the line.
            echo "HOST-NET-GOT $(wc -c </tmp/from-guest) $(sha256sum /tmp/from-guest | cut -d' ' -f1)" >/tmp/net-got
            timeout 20 wget -q -O /dev/null http://10.0.2.15:8080/done 2>/dev/null
        ) &
        "$VMM" "$@"
        rc=$?
        touch /tmp/net-vmm-gone # the fetch above stops retrying once the VM is gone
        wait
        cat /tmp/net-got 2>/dev/null
        exit $rc
        NETHOST
        """;

    /// <summary>The host side of the blk scenario: a fresh copy of the ext4 root, a read-only raw disk starting with
    /// a known string, and after the VM a check that the read-only image is unchanged.</summary>
    internal const string BlkHost = """
        cat >/tmp/lab-blk-host.sh <<'BLKHOST'
        cp /lab/rootfs.ext4 /tmp/root.img
        printf 'STRATOVIRT-RO-DISK' >/tmp/ro.img
        truncate -s 8M /tmp/ro.img
        before=$(sha256sum /tmp/ro.img | cut -d' ' -f1)
        "$VMM" "$@"
        rc=$?
        if [ "$(sha256sum /tmp/ro.img | cut -d' ' -f1)" = "$before" ]; then
            echo "HOST-BLK-RO-IMAGE unchanged"
        else
            echo "HOST-BLK-RO-IMAGE changed"
        fi
        rm -f /tmp/root.img /tmp/ro.img
        exit $rc
        BLKHOST
        """;

    /// <summary>The host side of the console scenario: after the VM, the lines of the hvc0 file chardev that show
    /// the guest's write and the kernel's own console output.</summary>
    private const string ConsoleHost = """
        cat >/tmp/lab-console-host.sh <<'CONHOST'
        rm -f /tmp/hvc0.out
        "$VMM" "$@"
        rc=$?
        tr -d '\r' </tmp/hvc0.out | grep -E 'hello-from-hvc0|kmsg-via-hvc0' | sed 's/^/HOST-HVC0 /'
        exit $rc
        CONHOST
        """;

    /// <summary>The host side of the balloon scenario: once the guest has touched its memory (RSS above 180 MiB),
    /// QMP inflates the balloon to leave the guest 128 MiB, waits for query-balloon to get there, measures the
    /// VMM's RSS before and after, and ends the VM with quit.</summary>
    private const string BalloonHost = """
        cat >/tmp/lab-balloon-host.sh <<'BALHOST'
        rm -f /tmp/qmp.sock
        "$VMM" "$@" &
        vmm=$!
        # This script's lines go to a file until the VM is gone: the VM's console shares the output and could
        # split them.
        exec 3>&1 >/tmp/balloon-host.out
        rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$vmm/status" 2>/dev/null; }
        # Every wait ends once the VMM is gone (a guest that triple-faulted): its QMP socket went with it.
        alive() { kill -0 $vmm 2>/dev/null; }
        n=0
        until [ "$(rss)" -gt 184320 ] 2>/dev/null || ! alive || [ $n -ge 900 ]; do sleep 0.2; n=$((n + 1)); done
        # The guest is still filling: wait until the RSS holds still (under 1 MiB of change in a second).
        last=0 n=0
        while [ $n -lt 60 ] && alive; do
            now=$(rss)
            [ $((now - last)) -lt 1024 ] && [ $((last - now)) -lt 1024 ] && break
            last=$now
            sleep 1
            n=$((n + 1))
        done
        echo "HOST-BALLOON-RSS-BEFORE-KB $(rss)"
        qmp-send /tmp/qmp.sock '{"execute":"query-cpus"}' | sed 's/^/HOST-QMP-CPUS /'
        qmp-send /tmp/qmp.sock '{"execute":"balloon","arguments":{"value":134217728}}' | sed 's/^/HOST-QMP /'
        n=0 actual=
        while [ $n -lt 240 ] && alive; do
            actual=$(qmp-send /tmp/qmp.sock '{"execute":"query-balloon"}' | grep -o '"actual":[0-9]*' | tail -n 1 | cut -d: -f2)
            [ -n "$actual" ] && [ "$actual" -le 140000000 ] && break
            sleep 0.5
            n=$((n + 1))
        done
        echo "HOST-BALLOON-ACTUAL $actual"
        echo "HOST-BALLOON-RSS-AFTER-KB $(rss)"
        qmp-send /tmp/qmp.sock '{"execute":"quit"}' | sed 's/^/HOST-QMP /'
        wait $vmm
        rc=$?
        exec >&3 3>&-
        cat /tmp/balloon-host.out
        exit $rc
        BALHOST
        """;

    /// <summary>The host side of the vsock scenario: an echo server on &lt;uds-path&gt;_6000 for the guest, and 1 MiB
    /// sent to the guest's port 5000 through &lt;uds-path&gt; (retried until the guest listens), checksummed back.</summary>
    private const string VsockHost = """
        cat >/tmp/lab-vsock-host.sh <<'VSOCKHOST'
        rm -f /tmp/vsock.sock /tmp/vsock.sock_6000
        vsock-echo uds-listen /tmp/vsock.sock_6000 1 &
        "$VMM" "$@" &
        vmm=$!
        dd if=/dev/urandom of=/tmp/hv bs=64k count=16 2>/dev/null
        echo "HOST-VSOCK-SENT $(sha256sum </tmp/hv | cut -d' ' -f1)"
        n=0
        until vsock-echo uds-connect /tmp/vsock.sock 5000 </tmp/hv >/tmp/hv.back 2>/dev/null && [ -s /tmp/hv.back ] ||
            ! kill -0 $vmm 2>/dev/null || [ $n -ge 120 ]; do
            sleep 1
            n=$((n + 1))
        done
        echoed=$(sha256sum </tmp/hv.back | cut -d' ' -f1)
        wait $vmm
        rc=$?
        # Printed once the VM is gone: while it runs, its console shares this output and can split the line.
        echo "HOST-VSOCK-ECHOED $echoed"
        [ -e /tmp/vsock.sock ] && echo "HOST-VSOCK-SOCKET left behind" || echo "HOST-VSOCK-SOCKET removed"
        exit $rc
        VSOCKHOST
        """;

    /// <summary>The host side of the lifecycle scenario: the VM starts paused (-S), then QMP cont, stop for 3 s,
    /// cont again; the guest's ticks (its console, kept in a file) show when it ran.</summary>
    private const string LifecycleHost = """
        cat >/tmp/lab-lifecycle-host.sh <<'LIFEHOST'
        rm -f /tmp/qmp-life.sock /tmp/life.out
        "$VMM" "$@" >/tmp/life.out 2>&1 &
        vmm=$!
        ticks() { grep -c GUEST-TICK /tmp/life.out; }
        alive() { kill -0 $vmm 2>/dev/null; } # every wait ends once the VMM is gone
        n=0
        until [ -S /tmp/qmp-life.sock ] || ! alive || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
        sleep 2
        echo "HOST-LIFE-KERNEL-LINES-WHILE-S $(grep -c 'Linux version' /tmp/life.out)"
        qmp-send /tmp/qmp-life.sock '{"execute":"query-status"}' | sed 's/^/HOST-LIFE-STATUS-S /'
        qmp-send /tmp/qmp-life.sock '{"execute":"cont"}' >/dev/null
        n=0
        until [ "$(ticks)" -ge 4 ] || ! alive || [ $n -ge 600 ]; do sleep 0.2; n=$((n + 1)); done
        qmp-send /tmp/qmp-life.sock '{"execute":"stop"}' | sed 's/^/HOST-LIFE-STOP /'
        a=$(ticks)
        qmp-send /tmp/qmp-life.sock '{"execute":"query-status"}' | sed 's/^/HOST-LIFE-STATUS-STOPPED /'
        sleep 3
        echo "HOST-LIFE-TICKS-WHILE-STOPPED $(($(ticks) - a))"
        qmp-send /tmp/qmp-life.sock '{"execute":"cont"}' >/dev/null
        n=0
        until [ "$(ticks)" -ge $((a + 3)) ] || ! alive || [ $n -ge 300 ]; do sleep 0.2; n=$((n + 1)); done
        echo "HOST-LIFE-TICKS-AFTER-CONT $(($(ticks) - a))"
        qmp-send /tmp/qmp-life.sock '{"execute":"quit"}' >/dev/null
        wait $vmm
        rc=$?
        grep -E "GUEST-(INIT|TICK)" /tmp/life.out
        exit $rc
        LIFEHOST
        """;

    public static readonly string[] Lines =
    [
        Guest("virtio-rng", "rng",
            "-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-device,rng=rng0,id=rng1"),
        BlkHost,
        Guest("virtio-blk", "blk",
            "-object iothread,id=io0 -drive id=root,file=/tmp/root.img,direct=off " +
            "-device virtio-blk-device,drive=root,id=vda,serial=LABROOT,iothread=io0 " +
            "-drive id=ro,file=/tmp/ro.img,readonly=on -device virtio-blk-device,drive=ro,id=vdb",
            append: " root=/dev/vda", vmm: "sh /tmp/lab-blk-host.sh", timeout: 420),
        BalloonHost,
        Guest("virtio-balloon", "balloon", "-qmp unix:/tmp/qmp.sock,server,nowait -device virtio-balloon-device,id=balloon0",
            vmm: "sh /tmp/lab-balloon-host.sh", timeout: 300),
        VsockHost,
        Guest("virtio-vsock", "vsock", "-device vhost-vsock-device,id=vsock0,guest-cid=3,uds-path=/tmp/vsock.sock",
            vmm: "sh /tmp/lab-vsock-host.sh"),
        LifecycleHost,
        Guest("qmp-lifecycle", "count", "-S -qmp unix:/tmp/qmp-life.sock,server,nowait",
            vmm: "sh /tmp/lab-lifecycle-host.sh"),
        ConsoleHost,
        Guest("virtio-console", "console",
            "-chardev file,id=con0,path=/tmp/hvc0.out -device virtio-serial-device -device virtconsole,chardev=con0,id=port0",
            append: " console=hvc0", vmm: "sh /tmp/lab-console-host.sh"),
        NetHost,
        Guest("virtio-net", "net",
            "-netdev tap,id=net0,ifname=tap0 -device virtio-net-device,netdev=net0,id=eth0,mac=52:54:00:12:34:56",
            vmm: "unshare -n sh /tmp/lab-net-host.sh"),
    ];
}
