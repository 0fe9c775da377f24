using System.Buffers.Binary;
using System.Text;
using StratoVirt.Devices.Firmware;
using StratoVirt.Memory;

namespace StratoVirt.Tests.Firmware;

/// <summary>
/// The guest side of fw_cfg, as firmware drives it: the selector and data ports, and DMA requests built in guest
/// RAM (a descriptor at <see cref="DescriptorAddress"/>, the buffer at <see cref="BufferAddress"/>) and started
/// by writing the DMA address register, high half then low half.
/// </summary>
internal sealed class FwCfgDriver(FwCfg device, GuestMemory memory)
{
    public const ulong DescriptorAddress = 0x1000, BufferAddress = 0x10000;

    public void Select(ushort key)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, key);
        device.Write(0, b);
    }

    /// <summary>Reads <paramref name="count"/> bytes from the data port, one inb each.</summary>
    public byte[] ReadPort(int count)
    {
        var data = new byte[count];
        for (int i = 0; i < count; i++) device.Read(1, data.AsSpan(i, 1));
        return data;
    }

    /// <summary>Runs one DMA request and returns the control word the device wrote back.</summary>
    public uint Dma(uint control, uint length, ulong address, ulong descriptor = DescriptorAddress, bool split = true)
    {
        if (memory.TryGetSpan(descriptor, 16, out var d))
        {
            BinaryPrimitives.WriteUInt32BigEndian(d, control);
            BinaryPrimitives.WriteUInt32BigEndian(d[4..], length);
            BinaryPrimitives.WriteUInt64BigEndian(d[8..], address);
        }
        Span<byte> reg = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(reg, descriptor);
        if (split)
        {
            device.Write(4, reg[..4]);
            device.Write(8, reg[4..]);
        }
        else
        {
            device.Write(4, reg);
        }
        return memory.TryGetSpan(descriptor, 4, out var back) ? BinaryPrimitives.ReadUInt32BigEndian(back) : uint.MaxValue;
    }

    /// <summary>Selects <paramref name="key"/> and reads <paramref name="length"/> bytes of it by DMA.</summary>
    public byte[] DmaRead(ushort key, int length)
    {
        uint status = Dma((uint)key << 16 | FwCfg.DmaSelect | FwCfg.DmaRead, (uint)length, BufferAddress);
        if (status != 0) throw new InvalidOperationException($"DMA read of 0x{key:x} failed: 0x{status:x}");
        return memory.GetSpan(BufferAddress, (ulong)length).ToArray();
    }

    /// <summary>The file directory: name to (key, size).</summary>
    public Dictionary<string, (ushort Key, uint Size)> Files()
    {
        Select(FwCfgKey.FileDir);
        uint count = BinaryPrimitives.ReadUInt32BigEndian(ReadPort(4));
        var files = new Dictionary<string, (ushort, uint)>();
        for (int i = 0; i < count; i++)
        {
            var entry = ReadPort(64);
            string name = Encoding.ASCII.GetString(entry, 8, 56).TrimEnd('\0');
            files[name] = (BinaryPrimitives.ReadUInt16BigEndian(entry.AsSpan(4)), BinaryPrimitives.ReadUInt32BigEndian(entry));
        }
        return files;
    }

    /// <summary>A named file's contents, read by DMA.</summary>
    public byte[] ReadFile(string name)
    {
        var (key, size) = Files()[name];
        return DmaRead(key, (int)size);
    }
}
