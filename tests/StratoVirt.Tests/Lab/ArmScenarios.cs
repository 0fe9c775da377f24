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

    /// <summary>The host side of the QMP scenario: starts the VMM with a QMP socket, waits for the guest's first
    /// tick, asks for the status and the vCPUs, then quits and waits for SHUTDOWN; prints what the client received
    /// (HOST-QMP lines) and the VMM's exit code.</summary>
    private const string QmpHost = """
        cat >/tmp/arm-qmp-host.sh <<'QMPHOST'
        rm -f /tmp/qmp.sock /tmp/qmp.out
        "$VMM" "$@" -qmp unix:/tmp/qmp.sock,server,nowait >/tmp/qmp.out 2>&1 &
        vmm=$!
        n=0
        until grep -q GUEST-TICK /tmp/qmp.out || ! kill -0 $vmm 2>/dev/null || [ $n -ge 600 ]; do sleep 0.2; n=$((n + 1)); done
        qmp-send /tmp/qmp.sock '{"execute":"query-status"}' '{"execute":"query-cpus"}' '{"execute":"quit"}' \
            --wait-event SHUTDOWN >/tmp/qmp.ev
        echo "HOST-QMP-CLIENT rc=$?"
        sed 's/^/HOST-QMP /' /tmp/qmp.ev
        wait $vmm
        rc=$?
        echo "HOST-VMM-EXIT $rc"
        grep -E "GUEST-(INIT|ACTION)|stratovirt:" /tmp/qmp.out
        exit $rc
        QMPHOST
        """;

    private static string Boot(string name, int cpus, string action, string devices = "", string vmm = "\"$VMM\"") =>
        $"scenario {name} {TimeoutSeconds} env STRATOVIRT_LOG_LEVEL=info {vmm} -machine microvm -kernel \"$KERNEL\" " +
        $"-initrd \"$INITRD\" -append \"console=ttyAMA0 reboot=k panic=1 {action}\" -m {MemoryMiB} -smp {cpus} " +
        $"-serial stdio -disable-seccomp -name {name} -D{devices}";

    /// <summary>A command the binary must refuse before it makes anything (no KVM needed).</summary>
    private static string Refused(string name, string kernel, string extra = " -disable-seccomp") =>
        $"scenario {name} 30 \"$VMM\" -machine microvm -kernel {kernel} -m {MemoryMiB} -serial stdio{extra}";

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
        QmpHost,
        Boot("arm-qmp", 2, "lab.action=test lab.test=count", vmm: "sh /tmp/arm-qmp-host.sh"),
        Refused("arm-refuses-bzimage", "/lab/bzImage-header"),
        Refused("arm-refuses-old-image", "/lab/old-Image-header"),
        Refused("arm-refuses-seccomp", "\"$KERNEL\"", extra: ""),
    ];
}
