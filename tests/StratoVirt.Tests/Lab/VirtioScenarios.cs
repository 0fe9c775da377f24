namespace StratoVirt.Tests.Lab;

/// <summary>Linux guests in the nested lab that use virtio devices; each runs one /tests/&lt;name&gt;.sh of the guest
/// initramfs (scripts/lab/guest/tests) and powers off.</summary>
public static class VirtioScenarios
{
    /// <summary>The ext4 image of the guest tree that LabSession adds to the lab (as /lab/rootfs.ext4).</summary>
    public const string RootImage = "rootfs.ext4";

    /// <summary>Its size in MiB: room for the 64 MiB write test.</summary>
    public const int RootImageMiB = 160;

    private static string Guest(string name, string test, string devices, string append = "", int memoryMiB = 256,
        string prefix = "", int timeout = 180) =>
        $"{prefix}scenario {name} {timeout} env STRATOVIRT_LOG_LEVEL=info \"$VMM\" -machine microvm -kernel \"$KERNEL\" " +
        $"-initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test={test}{append}\" " +
        $"-m {memoryMiB} -smp 2 -serial stdio -name {name} -D {devices}";

    public static readonly string[] Lines =
    [
        Guest("virtio-rng", "rng",
            "-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-device,rng=rng0,id=rng1"),
    ];
}
