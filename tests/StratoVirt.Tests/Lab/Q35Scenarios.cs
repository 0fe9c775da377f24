namespace StratoVirt.Tests.Lab;

/// <summary>The q35 standard VM in the nested lab: Debian's cloud kernel booted directly with 512 MiB: the microVM's
/// blk (root on virtio-blk-pci, 1 vCPU) and net (virtio-net-pci, 4 vCPUs) tests; with 2 vCPUs,
/// running the guest's /tests/q35.sh (ACPI tables, PCI functions, CPUs, RTC) in three boots of one VMM process (the
/// guest reboots itself, then QMP system_reset, then QMP system_powerdown through the ACPI power button), then
/// powering off through PM1; and
/// with virtio-pci block, net and rng functions (/tests/q35-virtio.sh), once with MSI-X and once forced to INTx
/// (pci=nomsi); and PCIe native hotplug into root ports (/tests/q35-hotplug.sh), with and without fast unplug.</summary>
public static class Q35Scenarios
{
    public const int Cpus = 2, MemoryMiB = 512;

    /// <summary>The guest CID of q35-vhost's vhost-vsock-pci.</summary>
    public const int VsockCid = 41;

    /// <summary>The block function's slot.function, the NIC's and the rng's.</summary>
    public const string BlkAddress = "0000:00:03.0", NetAddress = "0000:00:04.0", RngAddress = "0000:00:04.1";

    /// <summary>The host side of the virtio scenarios, in a network namespace of its own (unshare -n): a raw disk
    /// starting with a known string, tap0 at 10.0.2.2 once the VMM made it, and after the VM the checksum of the
    /// MiB the guest wrote at offset 1 MiB.</summary>
    internal const string VirtioHost = """
        cat >/tmp/lab-q35-virtio-host.sh <<'Q35HOST'
        ip link set lo up
        printf 'STRATOVIRT-PCI-DISK' >/tmp/q35-disk.img
        truncate -s 8M /tmp/q35-disk.img
        (
            n=0
            until ip link show tap0 >/dev/null 2>&1 || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
            ip addr add 10.0.2.2/24 dev tap0
            ip link set tap0 up
        ) &
        "$VMM" "$@"
        rc=$?
        wait
        echo "HOST-Q35V-DISK $(dd if=/tmp/q35-disk.img bs=1M skip=1 count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
        exit $rc
        Q35HOST
        """;

    /// <summary>The raw disk at 00:03.0 of q35-boot, which counts the guest's boots.</summary>
    public const string BootCountAddress = "0000:00:03.0";

    /// <summary>The host side of q35-boot: an empty disk for the boot count, the VMM with its output in a file (and
    /// on stdout as it comes), and QMP clients one after the other: the first waits for the RESET of the guest's
    /// own reboot, the second sends system_reset once the second boot waits for it, the third system_powerdown
    /// once the third boot waits for the power button, and waits for SHUTDOWN. Then what each client received (as
    /// HOST-QMP&lt;n&gt; lines), the count on the disk and the VMM's exit code.</summary>
    private const string BootHost = """
        cat >/tmp/lab-q35-boot-host.sh <<'Q35BOOT'
        rm -f /tmp/q35-qmp.sock /tmp/q35-boot.out /tmp/q35-boot.ev* /tmp/q35-boots.img
        truncate -s 1M /tmp/q35-boots.img
        ( "$VMM" "$@"; echo "HOST-VMM-EXIT $?" ) 2>&1 | tee /tmp/q35-boot.out &
        running() { ! grep -q '^HOST-VMM-EXIT ' /tmp/q35-boot.out; }
        wait_for() {  # wait_for <pattern>: up to 180 s, while the VMM runs
            n=0
            until grep -q "$1" /tmp/q35-boot.out || ! running || [ $n -ge 1800 ]; do sleep 0.1; n=$((n + 1)); done
            grep -q "$1" /tmp/q35-boot.out
        }
        n=0
        until [ -S /tmp/q35-qmp.sock ] || ! running || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
        qmp-send /tmp/q35-qmp.sock '{"execute":"query-status"}' --wait-event RESET >/tmp/q35-boot.ev1 2>&1
        echo "HOST-Q35-QMP1 rc=$?"
        wait_for GUEST-Q35-AWAIT-RESET && qmp-send /tmp/q35-qmp.sock '{"execute":"system_reset"}' --wait-event RESET >/tmp/q35-boot.ev2 2>&1
        echo "HOST-Q35-QMP2 rc=$?"
        wait_for GUEST-Q35-AWAIT-POWERDOWN && qmp-send /tmp/q35-qmp.sock '{"execute":"system_powerdown"}' --wait-event SHUTDOWN >/tmp/q35-boot.ev3 2>&1
        echo "HOST-Q35-QMP3 rc=$?"
        wait
        for i in 1 2 3; do sed "s/^/HOST-QMP$i /" /tmp/q35-boot.ev$i 2>/dev/null; done
        echo "HOST-Q35-BOOTS $(head -c 512 /tmp/q35-boots.img | tr -dc 0-9)"
        rc=$(sed -n 's/^HOST-VMM-EXIT //p' /tmp/q35-boot.out)
        exit "${rc:-1}"
        Q35BOOT
        """;

    /// <summary>/tests/q35-virtio.sh on a q35 with virtio-blk-pci, virtio-net-pci and virtio-rng-pci behind
    /// <see cref="VirtioHost"/>, booting <paramref name="kernel"/> (default the cloud kernel).</summary>
    internal static string Virtio(string name, string append, string kernel = "\"$KERNEL\"", string initrd = "\"$INITRD\"") =>
        $"scenario {name} 240 env STRATOVIRT_LOG_LEVEL=info unshare -n sh /tmp/lab-q35-virtio-host.sh -machine q35 " +
        $"-kernel {kernel} -initrd {initrd} " +
        $"-append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=q35-virtio{append}\" " +
        $"-m {MemoryMiB} -smp {Cpus} -serial stdio -name {name} -D " +
        "-drive id=disk0,file=/tmp/q35-disk.img,direct=off -device virtio-blk-pci,drive=disk0,id=blk0,bus=pcie.0,addr=0x3 " +
        "-netdev tap,id=net0,ifname=tap0 " +
        "-device virtio-net-pci,netdev=net0,id=net0dev,bus=pcie.0,addr=0x4.0,multifunction=on,mac=52:54:00:12:34:57 " +
        "-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0,id=rng0dev,addr=0x4.1";

    /// <summary>The host side of q35-hotplug, in a network namespace of its own: two raw disks with known heads
    /// (one cold-plugged behind pcie.1, one for hotplug), the VMM in the background with QMP; once the guest is
    /// ready, device_add refusals (pcie.0, an unknown bus, an occupied port), then a disk into pcie.2 and a NIC on
    /// a tap into pcie.3, query-pci, and device_del of the disk waiting for DEVICE_DELETED.</summary>
    private static readonly string HotplugHost = """
        cat >/tmp/lab-q35-hotplug-host.sh <<'Q35HPHOST'
        ip link set lo up
        printf 'STRATOVIRT-COLD-DISK' >/tmp/q35hp-cold.img
        truncate -s 4M /tmp/q35hp-cold.img
        printf 'STRATOVIRT-HOT-DISK' >/tmp/q35hp-hot.img
        truncate -s 4M /tmp/q35hp-hot.img

        """ + HotplugScenarios.Prologue("q35hp", "HOST-Q35HP-TIMEOUT") + """
        plug() { qmp "{\"execute\":\"device_add\",\"arguments\":{\"id\":\"$1\",\"driver\":\"virtio-blk-pci\",\"drive\":\"d1\",\"bus\":\"$2\",\"addr\":\"$3\"}}" "$4"; }
        waitfor GUEST-Q35HP-READY
        qmp '{"execute":"blockdev-add","arguments":{"node-name":"d1","driver":"raw","file":{"driver":"file","filename":"/tmp/q35hp-hot.img"}}}' HOST-Q35HP-BLOCKDEV
        plug bad1 pcie.0 0x9 HOST-Q35HP-ERR-ROOT
        plug bad2 pcie.9 0x0 HOST-Q35HP-ERR-BUS
        plug bad3 pcie.1 0x0 HOST-Q35HP-ERR-OCCUPIED
        plug blk1 pcie.2 0x0 HOST-Q35HP-PLUG-BLK
        qmp '{"execute":"netdev_add","arguments":{"id":"n1","ifname":"tap0"}}' HOST-Q35HP-NETDEV
        ip addr add 10.0.2.2/24 dev tap0
        ip link set tap0 up
        qmp '{"execute":"device_add","arguments":{"id":"net1","driver":"virtio-net-pci","netdev":"n1","bus":"pcie.3","addr":"0x0","mac":"52:54:00:12:34:60"}}' HOST-Q35HP-PLUG-NET
        waitfor GUEST-Q35HP-PLUGGED
        qmp '{"execute":"query-pci"}' HOST-Q35HP-QUERY-PCI
        qmp-send /tmp/qmp-q35hp.sock '{"execute":"device_del","arguments":{"id":"blk1"}}' --wait-event DEVICE_DELETED | grep -v '^{"QMP"' | sed 's/^/HOST-Q35HP-UNPLUG /'
        waitfor GUEST-TEST-END
        wait $vmm
        rc=$?
        grep -E "GUEST-|pciehp|_OSC|pcieport|unplugged|plugged into" /tmp/q35hp.out
        rm -f /tmp/q35hp-cold.img /tmp/q35hp-hot.img
        exit $rc
        Q35HPHOST
        """;

    private static string Hotplug(string name, string global) =>
        $"scenario {name} 300 env STRATOVIRT_LOG_LEVEL=info unshare -n sh /tmp/lab-q35-hotplug-host.sh -machine q35 " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=q35-hotplug\" " +
        $"-m {MemoryMiB} -smp {Cpus} -serial stdio -name {name} -D -qmp unix:/tmp/qmp-q35hp.sock,server,nowait " +
        "-device pcie-root-port,id=pcie.1,port=0x1,chassis=1,bus=pcie.0,addr=0x2,multifunction=on " +
        "-device pcie-root-port,id=pcie.2,port=0x2,chassis=2,bus=pcie.0,addr=0x2.1 " +
        "-device pcie-root-port,id=pcie.3,port=0x3,chassis=3,bus=pcie.0,addr=0x3 " +
        "-drive id=d0,file=/tmp/q35hp-cold.img,direct=off -device virtio-blk-pci,drive=d0,id=blk0,bus=pcie.1,addr=0x0" + global;

    /// <summary>Size of q35-vublk-hotplug's image and the known text at its head.</summary>
    public const int VhostUserBlkImageMiB = 16;
    public const string VhostUserBlkHead = "STRATOVIRT-VUBLK-DISK";

    /// <summary>Shared by the vhost-user-blk-pci host scripts: the image with its known head, exported by
    /// qemu-storage-daemon (<see cref="VhostUserScenarios.StartStorageDaemon"/>).</summary>
    private static readonly string VhostUserBlkImageAndDaemon = $"""
        printf '{VhostUserBlkHead}' >/tmp/vublk.img
        truncate -s {VhostUserBlkImageMiB}M /tmp/vublk.img
        {VhostUserScenarios.StartStorageDaemon}

        """;

    /// <summary>Shared by the vhost-user-blk-pci host scripts once the VM is gone: the daemon's end, then the image's
    /// head and the hash of the MiB at 1 MiB the guest wrote.</summary>
    private static readonly string VhostUserBlkDaemonEndAndImage = VhostUserScenarios.StopStorageDaemon + $"""

        echo "HOST-Q35VUBLK-IMAGE-HEAD $(head -c {VhostUserBlkHead.Length} /tmp/vublk.img)"
        echo "HOST-Q35VUBLK-IMAGE $(dd if=/tmp/vublk.img bs=1M skip=1 count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"

        """;

    /// <summary>The host side of q35-vublk-cold: the image and the daemon, the VM with the disk given by -device,
    /// then the daemon's end and the image.</summary>
    private static readonly string VhostUserBlkColdHost = """
        cat >/tmp/lab-q35-vublk-cold-host.sh <<'Q35VUBCOLD'

        """ + VhostUserBlkImageAndDaemon + """
        "$VMM" "$@"
        rc=$?

        """ + VhostUserBlkDaemonEndAndImage + """
        rm -f /tmp/vublk.img /tmp/vublk.sock /tmp/qsd.log
        exit $rc
        Q35VUBCOLD
        """;

    /// <summary>The slot of q35-vublk-cold's vhost-user-blk-pci on pcie.0.</summary>
    public const string VhostUserBlkColdAddress = "0000:00:05.0";

    /// <summary>A wrapper for a host script's "$VMM" (the VMM itself in $REAL_VMM): the VMM in the background and,
    /// every half second while it runs, the kernel's vhost workers named after one of its threads (VHOST_SET_OWNER
    /// names its worker vhost-&lt;tid of the caller&gt;) with their CPU time so far in clock ticks (utime + stime);
    /// the last seen printed as HOST-VHOST-WORKERS once the VMM ended (while it runs its console shares the output).</summary>
    private const string VhostWorkersWrapper = """
        cat >/tmp/lab-vhost-workers.sh <<'VHWORKERS'
        #!/bin/sh
        "$REAL_VMM" "$@" &
        vmm=$!
        : >/tmp/vhost-workers
        while [ -e /proc/$vmm ] && ! grep -q '^State:.*zombie' /proc/$vmm/status 2>/dev/null; do
            ls /proc/$vmm/task 2>/dev/null | sed 's/^/vhost-/' >/tmp/vhost-names
            # A VMM on its way out lists no task, and busybox grep takes an empty pattern file as matching all.
            [ -s /tmp/vhost-names ] || break
            seen=
            for c in $(grep -lxF -f /tmp/vhost-names /proc/[0-9]*/comm /proc/$vmm/task/*/comm 2>/dev/null); do
                p=${c%/comm}
                read -r _ name _ _ _ _ _ _ _ _ _ _ _ ut st _ <"$p/stat"
                seen="$seen $name pid=${p#/proc/} ticks=$((ut + st))"
            done
            [ -n "$seen" ] && echo "$seen" >/tmp/vhost-workers
            sleep 0.5
        done
        wait $vmm
        rc=$?
        echo "HOST-VHOST-WORKERS$(cat /tmp/vhost-workers)"
        rm -f /tmp/vhost-workers /tmp/vhost-names
        exit $rc
        VHWORKERS
        chmod +x /tmp/lab-vhost-workers.sh
        """;

    /// <summary>The host side of q35-vublk-hotplug: an image with a known head exported by qemu-storage-daemon
    /// (<see cref="VhostUserScenarios.StartStorageDaemon"/>), the VMM in the background with QMP; once the guest is
    /// ready, device_add vhost-user-blk-pci on a chardev nobody added, then chardev-add and device_add into pcie.1
    /// (and chardev-remove while the device uses it); once the guest wrote, device_del waiting for DEVICE_DELETED,
    /// chardev-remove and query-status; once the function is gone from the guest, chardev-add and device_add again.
    /// After the VM, the daemon's end, the image's head and the hash of the MiB at 1 MiB.</summary>
    private static readonly string VhostUserBlkHotplugHost = """
        cat >/tmp/lab-q35-vublk-host.sh <<'Q35VUBLK'

        """ + VhostUserBlkImageAndDaemon + HotplugScenarios.Prologue("q35vublk", "HOST-Q35VUBLK-TIMEOUT") + """
        chardev='{"execute":"chardev-add","arguments":{"id":"vubc","backend":{"type":"socket","data":{"addr":{"type":"unix","data":{"path":"/tmp/vublk.sock"}},"server":false}}}}'
        plug() { qmp "{\"execute\":\"device_add\",\"arguments\":{\"id\":\"vublk1\",\"driver\":\"vhost-user-blk-pci\",\"chardev\":\"$1\",\"bus\":\"pcie.1\",\"addr\":\"0x0\"}}" "$2"; }
        waitfor GUEST-Q35VUBLK-READY
        plug nosuch HOST-Q35VUBLK-ERR-CHARDEV
        qmp "$chardev" HOST-Q35VUBLK-CHARDEV-ADD
        plug vubc HOST-Q35VUBLK-PLUG
        qmp '{"execute":"chardev-remove","arguments":{"id":"vubc"}}' HOST-Q35VUBLK-ERR-IN-USE
        waitfor GUEST-Q35VUBLK-PLUGGED
        qmp-send /tmp/qmp-q35vublk.sock '{"execute":"device_del","arguments":{"id":"vublk1"}}' --wait-event DEVICE_DELETED | grep -v '^{"QMP"' | sed 's/^/HOST-Q35VUBLK-UNPLUG /'
        qmp '{"execute":"chardev-remove","arguments":{"id":"vubc"}}' HOST-Q35VUBLK-CHARDEV-REMOVE
        qmp '{"execute":"query-status"}' HOST-Q35VUBLK-STATUS
        waitfor GUEST-Q35VUBLK-UNPLUGGED
        qmp "$chardev" HOST-Q35VUBLK-CHARDEV-READD
        plug vubc HOST-Q35VUBLK-REPLUG
        waitfor GUEST-TEST-END
        wait $vmm
        rc=$?

        """ + VhostUserBlkDaemonEndAndImage + """
        grep -E "GUEST-|pciehp|virtio_blk|vhost-user|plugged into|vublk1" /tmp/q35vublk.out
        rm -f /tmp/vublk.img /tmp/vublk.sock /tmp/qsd.log
        exit $rc
        Q35VUBLK
        """;

    /// <summary>The microVM's lab test <paramref name="test"/> on a q35 with <paramref name="cpus"/> vCPUs and the
    /// devices on virtio-pci.</summary>
    private static string Guest(string name, string test, int cpus, string devices, string append = "", string vmm = "\"$VMM\"",
        int timeout = 420, string machine = "q35") =>
        $"scenario {name} {timeout} env STRATOVIRT_LOG_LEVEL=info {vmm} -machine {machine} -kernel \"$KERNEL\" -initrd \"$INITRD\" " +
        $"-append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test={test}{append}\" " +
        $"-m {MemoryMiB} -smp {cpus} -serial stdio -name {name} -D {devices}";

    /// <summary>vCPUs of q35-blk-root and q35-net: the other counts than q35-boot's.</summary>
    public const int BlkRootCpus = 1, NetCpus = 4;

    public static readonly string[] Lines =
    [
        // The microVM's blk and net tests through virtio-pci: the ext4 root on a virtio-blk-pci function (its
        // queues on an iothread) beside a read-only one, and 16 MiB each way through a virtio-net-pci NIC on a tap.
        VirtioScenarios.BlkHost,
        Guest("q35-blk-root", "blk", BlkRootCpus,
            "-object iothread,id=io0 -drive id=root,file=/tmp/root.img,direct=off " +
            "-device virtio-blk-pci,drive=root,id=vda,serial=LABROOT,iothread=io0,bus=pcie.0,addr=0x3 " +
            "-drive id=ro,file=/tmp/ro.img,readonly=on -device virtio-blk-pci,drive=ro,id=vdb,bus=pcie.0,addr=0x4",
            append: " root=/dev/vda", vmm: "sh /tmp/lab-blk-host.sh"),
        VirtioScenarios.NetHost,
        Guest("q35-net", "net", NetCpus,
            "-netdev tap,id=net0,ifname=tap0 -device virtio-net-pci,netdev=net0,id=eth0,bus=pcie.0,addr=0x3,mac=52:54:00:12:34:58",
            vmm: "unshare -n sh /tmp/lab-net-host.sh"),
        BootHost,
        $"scenario q35-boot 480 env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-q35-boot-host.sh -machine q35 -kernel \"$KERNEL\" " +
        "-initrd \"$INITRD\" -append \"console=ttyS0 reboot=acpi panic=1 lab.action=test lab.test=q35\" " +
        $"-m {MemoryMiB} -smp {Cpus} -serial stdio -name q35-boot -D -qmp unix:/tmp/q35-qmp.sock,server,nowait " +
        "-drive id=boots,file=/tmp/q35-boots.img,direct=off -device virtio-blk-pci,drive=boots,id=boots0,bus=pcie.0,addr=0x3",
        VirtioHost,
        Virtio("q35-virtio-msix", ""),
        Virtio("q35-virtio-intx", " pci=nomsi"),
        // virtiofsd behind vhost-user-fs-pci through the virtio-fs host script of VhostUserScenarios, and the
        // kernel's vhost-vsock behind vhost-vsock-pci: both backends' call eventfds go to the guest by irqfd.
        "scenario q35-vhost 300 env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-vufs-host.sh -machine q35,mem-share=on " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=q35-vhost\" " +
        $"-m {MemoryMiB} -smp {Cpus} -serial stdio -name q35-vhost -D " +
        $"-chardev socket,id=vfs,path=/tmp/vufs.sock,server,nowait -device vhost-user-fs-pci,chardev=vfs,tag={VhostUserScenarios.Tag},id=fs0,addr=0x5 " +
        $"-device vhost-vsock-pci,id=vsock0,guest-cid={VsockCid},addr=0x6",
        // PCIe native hotplug: three root ports (two functions of slot 2, and slot 3), a disk cold-plugged behind
        // the first; the host script plugs and unplugs the others over QMP.
        HotplugHost,
        Hotplug("q35-hotplug", ""),
        // The same with Kata's and Kuasar's -global: the guest powers the slot off without its 5 s button delay.
        Hotplug("q35-hotplug-fast", " -global pcie-root-port.fast-unplug=1"),
        // vhost-user-blk-pci plugged over QMP (chardev-add, device_add) into an empty root port, with guest RAM
        // shared with qemu-storage-daemon; unplugged with fast unplug, and plugged again.
        VhostUserBlkHotplugHost,
        "scenario q35-vublk-hotplug 300 env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-q35-vublk-host.sh -machine q35,mem-share=on " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=q35-vublk\" " +
        $"-m {MemoryMiB} -smp {Cpus} -serial stdio -name q35-vublk-hotplug -D -qmp unix:/tmp/qmp-q35vublk.sock,server,nowait " +
        "-device pcie-root-port,id=pcie.1,port=0x1,chassis=1,bus=pcie.0,addr=0x2 -global pcie-root-port.fast-unplug=1",
        // The same device given with -device at start-up, on pcie.0: the guest's checks of the disk, then power-off.
        VhostUserBlkColdHost,
        Guest("q35-vublk-cold", "q35-vublk", Cpus,
            "-chardev socket,id=vubc,path=/tmp/vublk.sock,server,nowait " +
            "-device vhost-user-blk-pci,chardev=vubc,id=vublk0,bus=pcie.0,addr=0x5",
            append: " lab.vublk=cold", vmm: "sh /tmp/lab-q35-vublk-cold-host.sh", timeout: 240, machine: "q35,mem-share=on"),
        // vhost-net behind virtio-net-pci: the net test through the host script of q35-net, the VMM wrapped to
        // find its vhost worker.
        VhostWorkersWrapper,
        Guest("q35-vhost-net", "q35-vhost-net", Cpus,
            "-netdev tap,id=net0,ifname=tap0,vhost=on -device virtio-net-pci,netdev=net0,id=eth0,bus=pcie.0,addr=0x3,mac=52:54:00:12:34:59",
            vmm: "env REAL_VMM=\"$VMM\" VMM=/tmp/lab-vhost-workers.sh unshare -n sh /tmp/lab-net-host.sh", timeout: 300),
    ];
}
