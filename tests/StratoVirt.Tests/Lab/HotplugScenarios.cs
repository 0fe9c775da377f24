namespace StratoVirt.Tests.Lab;

/// <summary>MicroVM hotplug in the nested lab: QMP blockdev-add/device_add/device_del against a Linux guest that
/// mounts the hotplugged disk (scripts/lab/guest/tests/hotplug.sh).</summary>
public static class HotplugScenarios
{
    /// <summary>The empty ext4 image LabSession adds to the lab (as /lab/hotplug.ext4).</summary>
    public const string Image = "hotplug.ext4";

    /// <summary>Makes <see cref="Image"/> (16 MiB) in <paramref name="dir"/>; returns its path.</summary>
    public static string BuildImage(string dir)
    {
        string path = Path.Combine(dir, Image);
        var r = VmmProcess.RunCommand("mkfs.ext4", ["-q", "-F", path, "16M"], TimeSpan.FromMinutes(1));
        if (r.ExitCode != 0) throw new InvalidOperationException($"mkfs.ext4 for the hotplug image failed: {r}");
        return path;
    }

    /// <summary>The start of a hotplug host script: the VMM runs in the background with its console in
    /// /tmp/&lt;name&gt;.out and QMP on /tmp/qmp-&lt;name&gt;.sock; waitfor &lt;console text&gt; polls up to 240 s, or
    /// until the guest's test has ended (printing &lt;timeoutMarker&gt; and the text if it never comes), qmp
    /// &lt;command&gt; &lt;prefix&gt; prints the reply lines after the prefix.</summary>
    internal static string Prologue(string name, string timeoutMarker) => $$"""
        rm -f /tmp/qmp-{{name}}.sock /tmp/{{name}}.out
        "$VMM" "$@" >/tmp/{{name}}.out 2>&1 &
        vmm=$!
        waitfor() {  # waitfor <console text>: up to 240 s, or until the guest's test has ended
            n=0
            until grep -q -e "$1" -e GUEST-TEST-END /tmp/{{name}}.out || [ $n -ge 1200 ]; do sleep 0.2; n=$((n + 1)); done
            grep -q "$1" /tmp/{{name}}.out || echo "{{timeoutMarker}} $1"
        }
        qmp() { qmp-send /tmp/qmp-{{name}}.sock "$1" | grep -v '^{"QMP"' | sed "s/^/$2 /"; }

        """;

    /// <summary>The host side: plugs the image into block slot 1 the way Kata does (blockdev-add with aio native,
    /// device_add virtio-blk-mmio at addr 0x1) once the guest is ready, tries a second device into the occupied
    /// slot and a blockdev-del of the node in use, unplugs it after the guest wrote to it (DEVICE_DELETED), and
    /// plugs it back. The guest's console goes to a file the host watches; its markers are printed at the end.</summary>
    private static readonly string Host = """
        cat >/tmp/lab-hotplug-host.sh <<'HPHOST'
        cp /lab/hotplug.ext4 /tmp/hp.img

        """ + Prologue("hp", "HOST-HP-TIMEOUT") + """
        add='{"execute":"blockdev-add","arguments":{"node-name":"drive1","driver":"raw","read-only":false,"file":{"driver":"file","filename":"/tmp/hp.img","aio":"native"}}}'
        plug='{"execute":"device_add","arguments":{"id":"drive1","driver":"virtio-blk-mmio","drive":"drive1","addr":"0x1"}}'
        waitfor GUEST-HOTPLUG-READY
        qmp "$add" HOST-HP-ADD
        qmp "$plug" HOST-HP-PLUG
        waitfor GUEST-HOTPLUG-PLUGGED
        qmp '{"execute":"blockdev-add","arguments":{"node-name":"other","file":{"driver":"file","filename":"/tmp/hp.img"}}}' HOST-HP-ADD-LOCKED
        qmp '{"execute":"blockdev-del","arguments":{"node-name":"drive1"}}' HOST-HP-DEL-IN-USE
        waitfor GUEST-HOTPLUG-UNMOUNTED
        qmp '{"execute":"device_del","arguments":{"id":"drive1"}}' HOST-HP-UNPLUG
        waitfor GUEST-HOTPLUG-EMPTY
        qmp "$add" HOST-HP-READD
        qmp "$plug" HOST-HP-REPLUG
        waitfor GUEST-TEST-END
        wait $vmm
        rc=$?
        grep -E "GUEST-|virtio_blk|vdb" /tmp/hp.out
        rm -f /tmp/hp.img
        exit $rc
        HPHOST
        """;

    /// <summary>The host side of net hotplug, in a network namespace of its own (unshare -n): once the guest's
    /// empty net slot is up, netdev_add creates tap0, the host gives it 10.0.2.2 and device_add puts it into the
    /// slot; after the guest's pings, device_del takes it out again.</summary>
    private static readonly string NetHost = """
        cat >/tmp/lab-hpnet-host.sh <<'HPNHOST'

        """ + Prologue("hpn", "HOST-HPN-TIMEOUT") + """
        ip link set lo up
        waitfor GUEST-HPNET-READY
        qmp '{"execute":"netdev_add","arguments":{"id":"net1","ifname":"tap0"}}' HOST-HPN-ADD
        ip addr add 10.0.2.2/24 dev tap0
        ip link set tap0 up
        qmp '{"execute":"device_add","arguments":{"id":"net1","driver":"virtio-net-mmio","netdev":"net1","addr":"0x0"}}' HOST-HPN-PLUG
        waitfor GUEST-HPNET-PINGED
        qmp '{"execute":"device_del","arguments":{"id":"net1"}}' HOST-HPN-UNPLUG
        waitfor GUEST-TEST-END
        wait $vmm
        rc=$?
        grep -E "GUEST-" /tmp/hpn.out
        exit $rc
        HPNHOST
        """;

    public static readonly string[] Lines =
    [
        Host,
        "scenario virtio-hotplug 420 env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-hotplug-host.sh -machine microvm " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=hotplug\" " +
        "-m 256 -smp 2 -serial stdio -name virtio-hotplug -D -qmp unix:/tmp/qmp-hp.sock,server,nowait",
        NetHost,
        "scenario virtio-hotplug-net 420 env STRATOVIRT_LOG_LEVEL=info unshare -n sh /tmp/lab-hpnet-host.sh -machine microvm " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=hotplug-net\" " +
        "-m 256 -smp 2 -serial stdio -name virtio-hotplug-net -D -qmp unix:/tmp/qmp-hpn.sock,server,nowait",
    ];
}
