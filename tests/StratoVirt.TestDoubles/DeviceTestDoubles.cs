using System.Buffers.Binary;
using StratoVirt.Devices;
using StratoVirt.Devices.Legacy;
using StratoVirt.Memory;

namespace StratoVirt.Tests.Devices;

/// <summary>An interrupt line that counts its edges (pulses and rising levels) and keeps its level.</summary>
public sealed class CountingInterruptLine : IInterruptLine
{
    private int _count;
    private volatile bool _level;

    public int Count => Volatile.Read(ref _count);

    public bool Level => _level;

    public void Pulse() => Interlocked.Increment(ref _count);

    public void SetLevel(bool asserted)
    {
        if (asserted && !_level) Interlocked.Increment(ref _count);
        _level = asserted;
    }
}

/// <summary>A serial sink that records every byte it is given.</summary>
public sealed class RecordingSerialOutput : ISerialOutput
{
    private readonly List<byte> _bytes = [];

    public byte[] Bytes
    {
        get
        {
            lock (_bytes) return [.. _bytes];
        }
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        lock (_bytes) _bytes.AddRange(data);
    }
}

/// <summary>A serial sink that only counts bytes, so allocation tests measure the device alone.</summary>
public sealed class CountingSerialOutput : ISerialOutput
{
    public long Count { get; private set; }

    public void Write(ReadOnlySpan<byte> data) => Count += data.Length;
}

/// <summary>Single-byte port accesses, the way a guest's inb/outb reach a device.</summary>
public static class PortAccess
{
    public static byte In(this IBusDevice device, ulong offset)
    {
        Span<byte> b = stackalloc byte[1];
        device.Read(offset, b);
        return b[0];
    }

    public static void Out(this IBusDevice device, ulong offset, byte value)
    {
        ReadOnlySpan<byte> b = [value];
        device.Write(offset, b);
    }
}

/// <summary>32-bit MMIO accesses, the way a guest's readl/writel reach a PrimeCell device.</summary>
public static class MmioAccess
{
    public static uint Read32(this IBusDevice device, ulong offset)
    {
        Span<byte> b = stackalloc byte[4];
        device.Read(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public static void Write32(this IBusDevice device, ulong offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        device.Write(offset, b);
    }
}
