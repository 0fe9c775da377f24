namespace StratoVirt.Memory;

/// <summary>A device reached through a port-I/O or MMIO range; offsets are relative to the range base.</summary>
public interface IBusDevice
{
    /// <summary>Fills <paramref name="data"/> (1, 2, 4 or 8 bytes) from the register at <paramref name="offset"/>.</summary>
    void Read(ulong offset, Span<byte> data);

    /// <summary>Stores <paramref name="data"/> into the register at <paramref name="offset"/>.</summary>
    void Write(ulong offset, ReadOnlySpan<byte> data);
}
