namespace StratoVirt.Tests.Lab;

/// <summary>Debian's generic kernel (the package behind linux-image-amd64, not the cloud flavour) as the inner guest,
/// with its own initramfs of the same virtio modules ($GENERIC_KERNEL, $GENERIC_INITRD): /tests/q35-virtio.sh on
/// q35 (virtio-pci) and on the microVM (virtio-mmio; the script's PCI listing then finds nothing, its block, net
/// and rng checks are the same).</summary>
public static class GenericKernelScenarios
{
    private const string Kernel = "\"$GENERIC_KERNEL\"", Initrd = "\"$GENERIC_INITRD\"";

    public static readonly string[] Lines =
    [
        Q35Scenarios.VirtioHost,
        Q35Scenarios.Virtio("q35-generic", "", Kernel, Initrd),
        VirtioScenarios.Guest("microvm-generic", "q35-virtio",
            "-drive id=disk0,file=/tmp/q35-disk.img,direct=off -device virtio-blk-device,drive=disk0,id=blk0 " +
            "-netdev tap,id=net0,ifname=tap0 -device virtio-net-device,netdev=net0,id=net0dev,mac=52:54:00:12:34:59 " +
            "-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-device,rng=rng0,id=rng0dev",
            vmm: "unshare -n sh /tmp/lab-q35-virtio-host.sh", kernel: Kernel, initrd: Initrd),
    ];
}
