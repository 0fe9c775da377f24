namespace StratoVirt.Tests.Lab;

/// <summary>The aarch64 microVM in the Arm nested lab (scripts/lab/arm/run.sh): Debian's arm64 kernel booted by our
/// arm64 binary on the outer VM's KVM, as lines of the scenario file.</summary>
public static class ArmScenarios
{
    public const int MemoryMiB = 256;

    /// <summary>A boot takes 15-50 s under the Arm lab's TCG; one that has not ended by then is stuck.</summary>
    private const int TimeoutSeconds = 180;

    private const string Console = "-chardev file,id=con0,path=/tmp/hvc0.out -device virtio-serial-device " +
        "-device virtconsole,chardev=con0,id=port0";

    /// <summary>A host script /tmp/arm-&lt;name&gt;-host.sh: starts the VMM with QMP on /tmp/&lt;name&gt;.sock and its
    /// console in /tmp/&lt;name&gt;.out, waits (polls of 0.2 s) for the guest's ready marker, runs the client lines,
    /// then prints the VMM's exit code (HOST-VMM-EXIT) and the console lines matching a pattern.</summary>
    private static string QmpHostScript(string name, string ready, int polls, string client, string console) => $$"""
        cat >/tmp/arm-{{name}}-host.sh <<'QMPHOST'
        rm -f /tmp/{{name}}.sock /tmp/{{name}}.out
        "$VMM" "$@" -qmp unix:/tmp/{{name}}.sock,server,nowait >/tmp/{{name}}.out 2>&1 &
        vmm=$!
        n=0
        until grep -q {{ready}} /tmp/{{name}}.out || ! kill -0 $vmm 2>/dev/null || [ $n -ge {{polls}} ]; do sleep 0.2; n=$((n + 1)); done
        {{client}}
        wait $vmm
        rc=$?
        echo "HOST-VMM-EXIT $rc"
        grep -E "{{console}}" /tmp/{{name}}.out
        exit $rc
        QMPHOST
        """;

    /// <summary>The host side of the QMP scenario: after the guest's first tick, asks for the status and the vCPUs,
    /// then system_powerdown (the microVM has no power button: upstream's microVM ends the VM, as ours does on x86)
    /// and waits for SHUTDOWN; prints what the client received (HOST-QMP lines).</summary>
    private static readonly string QmpHost = QmpHostScript("qmp", "GUEST-TICK", 600, """
        qmp-send /tmp/qmp.sock '{"execute":"query-status"}' '{"execute":"query-cpus"}' '{"execute":"system_powerdown"}' \
            --wait-event SHUTDOWN >/tmp/qmp.ev
        echo "HOST-QMP-CLIENT rc=$?"
        sed 's/^/HOST-QMP /' /tmp/qmp.ev
        """, "GUEST-(INIT|ACTION)|stratovirt:");

    /// <summary>The host side of the hotplug scenario: once the guest reports its empty slot, blockdev-add of the
    /// lab's raw disk and device_add into block slot 1; prints the replies (HOST-HP lines).</summary>
    private static readonly string HotplugHost = QmpHostScript("hp", "GUEST-HP-READY", 900, """
        qmp-send /tmp/hp.sock \
            '{"execute":"blockdev-add","arguments":{"node-name":"hp1","driver":"raw","read-only":true,"file":{"driver":"file","filename":"/lab/disk.raw"}}}' \
            '{"execute":"device_add","arguments":{"id":"hp1","driver":"virtio-blk-mmio","drive":"hp1","addr":"0x1"}}' \
            | sed 's/^/HOST-HP /'
        """, "GUEST-|stratovirt:");

    /// <summary>A boot under seccomp (the default).</summary>
    private static string Boot(string name, int cpus, string action, string devices = "", string vmm = "\"$VMM\"") =>
        $"scenario {name} {TimeoutSeconds} env STRATOVIRT_LOG_LEVEL=info {vmm} -machine microvm -kernel \"$KERNEL\" " +
        $"-initrd \"$INITRD\" -append \"console=ttyAMA0 reboot=k panic=1 {action}\" -m {MemoryMiB} -smp {cpus} " +
        $"-serial stdio -name {name} -D{devices}";

    /// <summary>A command the binary must refuse before it makes anything (no KVM needed).</summary>
    private static string Refused(string name, string kernel) =>
        $"scenario {name} 30 \"$VMM\" -machine microvm -kernel {kernel} -m {MemoryMiB} -serial stdio";

    /// <summary>The scenarios of the default test run (LAB_ONLY): what differs from x86_64 — the boot protocol, device
    /// tree, GICv3 and PSCI with 2 vCPUs, the arm64 seccomp lists and their report, QMP with a hotplugged
    /// virtio-mmio disk on its SPI — and the refused kernels. The virtio device scenarios run with
    /// STRATOVIRT_ARM_LAB=full (scripts/test.sh armlab).</summary>
    public const string DefaultRun = "^arm-(boot-2cpu|hotplug|seccomp-blocked|ozone|refuses-.*)$";

    /// <summary>The host side of arm-ozone: the x86 lab's ozone script with the Image, initrd and the raw disk passed in.</summary>
    private static readonly string OzoneHost = OzoneScenarios.HostScript("""
        cp "$KERNEL" /tmp/oz/oz-Image
        cp "$INITRD" /tmp/oz/oz-initrd
        cp "$DISK" /tmp/oz/oz-disk.raw
        """, "/tmp/oz/oz-Image /tmp/oz/oz-initrd /tmp/oz/oz-disk.raw", "");

    public static readonly string[] Lines =
    [
        Boot("arm-boot-1cpu", 1, "lab.action=poweroff"),
        Boot("arm-boot-2cpu", 2, "lab.action=poweroff"),
        Boot("arm-reboot", 1, "lab.action=reboot"),
        // The disk's checksum as the outer VM computed it, then the guest's over /dev/vda.
        "echo \"HOST-DISK-SHA256 $DISK_SHA256\"",
        Boot("arm-blk", 1, "lab.action=test lab.test=blk-read",
            " -drive id=d0,file=\"$DISK\",readonly=on -device virtio-blk-device,drive=d0,id=blk0"),
        Boot("arm-console", 1, "lab.action=test lab.test=console", " " + Console),
        "echo \"HOST-HVC0-FILE $(grep -c hello-from-hvc0 /tmp/hvc0.out)\"",
        Boot("arm-rng", 1, "lab.action=test lab.test=rng",
            " -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-device,rng=rng0,id=rng1"),
        // The x86 lab's net scenario: ping and 16 MiB each way through a tap in a network namespace of its own.
        VirtioScenarios.NetHost,
        Boot("arm-net", 1, "lab.action=test lab.test=net",
            " -netdev tap,id=net0,ifname=tap0 -device virtio-net-device,netdev=net0,id=eth0,mac=52:54:00:12:34:56",
            vmm: "unshare -n sh /tmp/lab-net-host.sh"),
        QmpHost,
        Boot("arm-qmp", 2, "lab.action=test lab.test=count", vmm: "sh /tmp/arm-qmp-host.sh"),
        HotplugHost,
        Boot("arm-hotplug", 1, "lab.action=test lab.test=hotplug-read", vmm: "sh /tmp/arm-hp-host.sh"),
        // A system call outside every list, made on a vCPU thread (STRATOVIRT_SECCOMP_PROBE): named from aarch64's table.
        Boot("arm-seccomp-blocked", 2, "lab.action=poweroff", vmm: "env STRATOVIRT_SECCOMP_PROBE=vcpu \"$VMM\""),
        // The arm64 ozone runs the VMM in its sandbox (uid 1000, a cgroup v2, a chroot without /proc, no
        // capabilities); the guest reads the disk passed in with -source.
        OzoneHost,
        $"scenario arm-ozone {TimeoutSeconds} env STRATOVIRT_LOG_LEVEL=info sh /tmp/lab-ozone-host.sh -machine microvm " +
        $"-kernel /oz-Image -initrd /oz-initrd -append \"console=ttyAMA0 reboot=k panic=1 lab.action=test lab.test=blk-read\" " +
        $"-m {MemoryMiB} -smp 1 -serial stdio -name ozlab -D " +
        "-drive id=d0,file=/oz-disk.raw,readonly=on -device virtio-blk-device,drive=d0,id=blk0",
        Refused("arm-refuses-bzimage", "/lab/bzImage-header"),
        Refused("arm-refuses-old-image", "/lab/old-Image-header"),
    ];
}
