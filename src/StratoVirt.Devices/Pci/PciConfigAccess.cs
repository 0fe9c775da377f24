using System.Buffers.Binary;
using StratoVirt.Memory;

namespace StratoVirt.Devices.Pci;

/// <summary>
/// Configuration mechanism #1: the address register at 0xCF8 and the data window at 0xCFC-0xCFF (register the
/// object at 0xCF8 with <see cref="Length"/> 8). On a q35 the byte at 0xCF9 is the ICH9 reset control register;
/// a write with RST_CPU set calls <paramref name="reset"/>. Bus 0 is <paramref name="bus"/>; the others are reached
/// through its bridges (type 1 accesses, routed by the bus numbers the guest gave them).
/// </summary>
public sealed class PciConfigPorts(PciBus bus, Action reset) : IBusDevice
{
    public const ulong Base = 0xCF8;
    public const ulong Length = 8;

    private const uint Enable = 1u << 31;
    private const byte ResetCpu = 1 << 2;

    private uint _address;
    private byte _resetControl;

    public void Read(ulong offset, Span<byte> data)
    {
        if (offset == 0 && data.Length == 4) BinaryPrimitives.WriteUInt32LittleEndian(data, Volatile.Read(ref _address));
        else if (offset == 1 && data.Length == 1) data[0] = _resetControl;
        else if (offset >= 4 && Target(offset, data.Length, out int number, out int devfn, out int register)) bus.ReadConfig(number, devfn, register, data);
        else data.Fill(0xFF);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset == 0 && data.Length == 4)
        {
            Volatile.Write(ref _address, BinaryPrimitives.ReadUInt32LittleEndian(data));
        }
        else if (offset == 1 && data.Length == 1)
        {
            _resetControl = (byte)(data[0] & ~ResetCpu);
            if ((data[0] & ResetCpu) != 0) reset();
        }
        else if (offset >= 4 && Target(offset, data.Length, out int number, out int devfn, out int register))
        {
            bus.WriteConfig(number, devfn, register, data);
        }
    }

    /// <summary>The power-on state (a machine reset): no address latched, reset control 0.</summary>
    public void Reset()
    {
        Volatile.Write(ref _address, 0);
        _resetControl = 0;
    }

    private bool Target(ulong offset, int length, out int number, out int devfn, out int register)
    {
        uint address = Volatile.Read(ref _address);
        number = (int)(address >> 16) & 0xFF;
        devfn = (int)(address >> 8) & 0xFF;
        register = (int)(address & 0xFC) + (int)(offset - 4);
        return (address & Enable) != 0 && (int)(offset - 4) + length <= 4;
    }
}

/// <summary>
/// The PCI Express enhanced configuration access window (ECAM): 4 KiB of configuration space per function,
/// bus in address bits 27:20, slot and function in 19:12. Bus 0 is <paramref name="bus"/>; the others are reached
/// through its bridges.
/// </summary>
public sealed class PciEcam(PciBus bus) : IBusDevice
{
    /// <summary>256 buses of 1 MiB each.</summary>
    public const ulong Size = 256UL << 20;

    public void Read(ulong offset, Span<byte> data) =>
        bus.ReadConfig((int)(offset >> 20) & 0xFF, (int)(offset >> 12) & 0xFF, (int)(offset & 0xFFF), data);

    public void Write(ulong offset, ReadOnlySpan<byte> data) =>
        bus.WriteConfig((int)(offset >> 20) & 0xFF, (int)(offset >> 12) & 0xFF, (int)(offset & 0xFFF), data);
}
