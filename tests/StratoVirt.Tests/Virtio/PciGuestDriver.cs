using System.Buffers.Binary;
using StratoVirt.Devices;
using StratoVirt.Devices.Pci;
using StratoVirt.Virtio.Transport.Pci;
using static StratoVirt.Virtio.Transport.Pci.VirtioPciRegister;

namespace StratoVirt.Tests.Virtio;

/// <summary>A guest's accesses to a virtio-pci function: its configuration space, its BAR (by offset), its
/// capabilities and its MSI-X table.</summary>
internal sealed class PciGuestDriver(VirtioPciFunction function)
{
    public VirtioPciFunction Function { get; } = function;

    public uint Config32(int offset)
    {
        Span<byte> b = stackalloc byte[4];
        Function.ReadConfig(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public void WriteConfig16(int offset, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        Function.WriteConfig(offset, b);
    }

    public ulong Bar(ulong offset, int width)
    {
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        Function.Read(offset, b[..width]);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    public void Bar(ulong offset, int width, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Function.Write(offset, b[..width]);
    }

    /// <summary>The capabilities as a driver walks them: (offset, id) from the pointer at 0x34.</summary>
    public List<(int Offset, byte Id)> Capabilities()
    {
        var list = new List<(int, byte)>();
        int at = (byte)Config32(PciConfigSpace.CapabilitiesPointer);
        while (at != 0 && list.Count < 48)
        {
            uint header = Config32(at);
            list.Add((at, (byte)header));
            at = (byte)(header >> 8);
        }
        return list;
    }

    public int MsixCapability => Capabilities().Single(c => c.Id == MsixTable.CapabilityId).Offset;

    public void EnableMsix(bool functionMask = false) =>
        WriteConfig16(MsixCapability + 2, (ushort)(0x8000 | (functionMask ? 0x4000 : 0)));

    public void ProgramVector(int vector, ulong address, uint data, bool masked)
    {
        ulong entry = MsixTableOffset + (ulong)vector * MsixTable.EntrySize;
        Bar(entry, 8, address);
        Bar(entry + 8, 4, data);
        Bar(entry + 12, 4, masked ? 1UL : 0);
    }

    public ulong Pba => Bar(Config32(MsixCapability + 8) & ~7u, 4);
}

/// <summary>An MSI controller that records the messages sent.</summary>
internal sealed class RecordingMsi : IMsiController
{
    public readonly List<MsiMessage> Sent = [];
    public void Send(MsiMessage message) => Sent.Add(message);
}
