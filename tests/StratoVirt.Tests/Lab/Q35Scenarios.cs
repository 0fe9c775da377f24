namespace StratoVirt.Tests.Lab;

/// <summary>The q35 standard VM in the nested lab: Debian's cloud kernel booted directly with 2 vCPUs and 512 MiB,
/// running the guest's /tests/q35.sh (ACPI tables, PCI functions, CPUs, RTC), then powering off through PM1; and
/// with virtio-pci block, net and rng functions (/tests/q35-virtio.sh), once with MSI-X and once forced to INTx
/// (pci=nomsi).</summary>
public static class Q35Scenarios
{
    public const int Cpus = 2, MemoryMiB = 512;

    /// <summary>The block function's slot.function, the NIC's and the rng's.</summary>
    public const string BlkAddress = "0000:00:03.0", NetAddress = "0000:00:04.0", RngAddress = "0000:00:04.1";

    /// <summary>The host side of the virtio scenarios, in a network namespace of its own (unshare -n): a raw disk
    /// starting with a known string, tap0 at 10.0.2.2 once the VMM made it, and after the VM the checksum of the
    /// MiB the guest wrote at offset 1 MiB.</summary>
    private const string VirtioHost = """
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

    private static string Virtio(string name, string append) =>
        $"scenario {name} 240 env STRATOVIRT_LOG_LEVEL=info unshare -n sh /tmp/lab-q35-virtio-host.sh -machine q35 " +
        "-kernel \"$KERNEL\" -initrd \"$INITRD\" " +
        $"-append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=q35-virtio{append}\" " +
        $"-m {MemoryMiB} -smp {Cpus} -serial stdio -name {name} -D " +
        "-drive id=disk0,file=/tmp/q35-disk.img,direct=off -device virtio-blk-pci,drive=disk0,id=blk0,bus=pcie.0,addr=0x3 " +
        "-netdev tap,id=net0,ifname=tap0 " +
        "-device virtio-net-pci,netdev=net0,id=net0dev,bus=pcie.0,addr=0x4.0,multifunction=on,mac=52:54:00:12:34:57 " +
        "-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0,id=rng0dev,addr=0x4.1";

    public static readonly string[] Lines =
    [
        $"scenario q35-boot 240 env STRATOVIRT_LOG_LEVEL=info \"$VMM\" -machine q35 -kernel \"$KERNEL\" " +
        "-initrd \"$INITRD\" -append \"console=ttyS0 reboot=k panic=1 lab.action=test lab.test=q35\" " +
        $"-m {MemoryMiB} -smp {Cpus} -serial stdio -name q35-boot -D",
        VirtioHost,
        Virtio("q35-virtio-msix", ""),
        Virtio("q35-virtio-intx", " pci=nomsi"),
    ];
}
