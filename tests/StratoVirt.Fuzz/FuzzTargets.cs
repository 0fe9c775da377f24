using System.Diagnostics.CodeAnalysis;

namespace StratoVirt.Fuzz;

/// <summary>One parser of untrusted bytes, fed a fuzz input. A target throws only for a finding: the product's
/// documented rejections (its validation exceptions, a device stopping itself with NEEDS_RESET) are caught inside.</summary>
public interface IFuzzTarget
{
    void Run(ReadOnlySpan<byte> input);
}

/// <summary>Every fuzz target, by the name bench/fuzz.sh and the corpus folders use.</summary>
public static class FuzzTargets
{
    /// <summary>The largest input a target reads; AFL's inputs beyond it are cut.</summary>
    public const int MaxInput = 1 << 17;

    private static readonly (string Name, Func<IFuzzTarget> Create)[] All =
    [
        ("virtqueue", () => new VirtqueueTarget()),
        ("virtio-blk", () => new VirtioDeviceTarget(FuzzDevices.Kind.Blk)),
        ("virtio-net", () => new VirtioDeviceTarget(FuzzDevices.Kind.Net)),
        ("virtio-vsock", () => new VirtioDeviceTarget(FuzzDevices.Kind.Vsock)),
        ("virtio-balloon", () => new VirtioDeviceTarget(FuzzDevices.Kind.Balloon)),
        ("virtio-console", () => new VirtioDeviceTarget(FuzzDevices.Kind.Console)),
        ("virtio-rng", () => new VirtioDeviceTarget(FuzzDevices.Kind.Rng)),
        ("virtio-mmio", () => new VirtioMmioTarget()),
        ("uart", () => new LegacyBusTarget(LegacyBusTarget.Kind.Uart)),
        ("rtc", () => new LegacyBusTarget(LegacyBusTarget.Kind.Rtc)),
        ("i8042", () => new LegacyBusTarget(LegacyBusTarget.Kind.I8042)),
        ("iobus", () => new LegacyBusTarget(LegacyBusTarget.Kind.IoBus)),
        ("qmp", () => new QmpRequestTarget()),
        ("cmdline", () => new CommandLineTarget()),
        ("bzimage", () => new KernelTarget(KernelTarget.Kind.BzImage)),
        ("elf", () => new KernelTarget(KernelTarget.Kind.Elf)),
        ("virtio-pci", () => new PciTarget(PciTarget.Kind.VirtioPci)),
        ("pci-config", () => new PciTarget(PciTarget.Kind.PciConfig)),
        ("snapshot", () => new SnapshotTarget()),
        ("vhost-user", () => new VhostUserTarget()),
    ];

    public static IEnumerable<string> Names => All.Select(t => t.Name);

    /// <summary>A new instance of the target named <paramref name="name"/> (targets keep state between runs, such as
    /// guest memory, so each caller gets its own).</summary>
    public static bool TryGet(string name, [NotNullWhen(true)] out IFuzzTarget? target)
    {
        target = All.FirstOrDefault(t => t.Name == name).Create?.Invoke();
        return target is not null;
    }
}

/// <summary>Reads little-endian fields from a fuzz input; past its end every field reads as zero.</summary>
public ref struct FuzzReader(ReadOnlySpan<byte> data)
{
    private ReadOnlySpan<byte> _data = data;

    public readonly int Remaining => _data.Length;

    public ReadOnlySpan<byte> Bytes(int count)
    {
        var b = _data[..Math.Min(count, _data.Length)];
        _data = _data[b.Length..];
        return b;
    }

    public byte U8() => Bytes(1) is [var b] ? b : (byte)0;

    public ushort U16() => (ushort)Little(2);

    public uint U32() => (uint)Little(4);

    public ulong U64() => Little(8);

    private ulong Little(int size)
    {
        ulong v = 0;
        var b = Bytes(size);
        for (int i = b.Length - 1; i >= 0; i--) v = v << 8 | b[i];
        return v;
    }
}
