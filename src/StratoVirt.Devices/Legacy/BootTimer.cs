using StratoVirt.Memory;

namespace StratoVirt.Devices.Legacy;

/// <summary>
/// Firecracker's boot-time probe: a guest init writes the byte 123 to offset 0 of this MMIO page (mapped at
/// 0xC0000000) to say it has started, and the VMM records how long boot took.
/// </summary>
/// <remarks>Stateless; the callback runs on the vCPU thread that wrote the byte.</remarks>
public sealed class BootTimer : IBusDevice
{
    /// <summary>Bytes of MMIO space the device occupies.</summary>
    public const ulong Length = 0x1000;

    /// <summary>The value that signals "boot complete".</summary>
    public const byte BootCompleteMagic = 123;

    private readonly Action _onBootComplete;

    /// <summary>Creates the probe; <paramref name="onBootComplete"/> runs each time the guest signals.</summary>
    public BootTimer(Action onBootComplete)
    {
        ArgumentNullException.ThrowIfNull(onBootComplete);
        _onBootComplete = onBootComplete;
    }

    /// <inheritdoc />
    public void Read(ulong offset, Span<byte> data) => data.Clear();

    /// <inheritdoc />
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        // Only the exact single-byte store counts; anything else is ignored.
        if (offset == 0 && data.Length == 1 && data[0] == BootCompleteMagic) _onBootComplete();
    }
}
