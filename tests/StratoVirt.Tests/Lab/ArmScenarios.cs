namespace StratoVirt.Tests.Lab;

/// <summary>The aarch64 microVM in the Arm nested lab (scripts/lab/arm/run.sh): Debian's arm64 kernel booted by our
/// arm64 binary on the outer VM's KVM, as lines of the scenario file.</summary>
public static class ArmScenarios
{
    public const int MemoryMiB = 256;

    /// <summary>A boot takes 20-60 s under the Arm lab's TCG; one that has not ended by then is stuck.</summary>
    private const int TimeoutSeconds = 180;

    private static string Boot(string name, int cpus, string action, string devices = "") =>
        $"scenario {name} {TimeoutSeconds} env STRATOVIRT_LOG_LEVEL=info \"$VMM\" -machine microvm -kernel \"$KERNEL\" " +
        $"-initrd \"$INITRD\" -append \"console=ttyAMA0 reboot=k panic=1 {action}\" -m {MemoryMiB} -smp {cpus} " +
        $"-serial stdio -disable-seccomp -name {name} -D{devices}";

    public static readonly string[] Lines =
    [
        Boot("arm-boot-1cpu", 1, "lab.action=poweroff"),
        Boot("arm-boot-2cpu", 2, "lab.action=poweroff"),
        Boot("arm-reboot", 1, "lab.action=reboot"),
        // The disk's checksum as the outer VM computed it, then the guest's over /dev/vda.
        "echo \"HOST-DISK-SHA256 $DISK_SHA256\"",
        Boot("arm-blk", 1, "lab.action=test lab.test=blk",
            " -drive id=d0,file=\"$DISK\",readonly=on -device virtio-blk-device,drive=d0,id=blk0"),
    ];
}
