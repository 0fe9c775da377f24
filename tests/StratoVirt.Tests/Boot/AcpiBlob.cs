using System.Buffers.Binary;
using System.Text;
using Xunit;

namespace StratoVirt.Tests.Boot;

/// <summary>Reads an ACPI table blob the way a guest would: from the RSDP, following absolute addresses.</summary>
internal sealed class AcpiBlob
{
    private readonly byte[] _blob;
    private readonly ulong _address;

    public AcpiBlob(byte[] blob, ulong address)
    {
        _blob = blob;
        _address = address;
        Rsdp = blob[..36];
        Xsdt = TableAt(BinaryPrimitives.ReadUInt64LittleEndian(Rsdp.AsSpan(24)));
        XsdtEntries = Enumerable.Range(0, (Xsdt.Length - 36) / 8)
            .Select(i => BinaryPrimitives.ReadUInt64LittleEndian(Xsdt.AsSpan(36 + 8 * i))).ToArray();
        Fadt = XsdtEntries.Select(TableAt).Single(t => Signature(t) == "FACP");
        Madt = XsdtEntries.Select(TableAt).Single(t => Signature(t) == "APIC");
        DsdtAddress = BinaryPrimitives.ReadUInt64LittleEndian(Fadt.AsSpan(140));
        Dsdt = TableAt(DsdtAddress);
    }

    public byte[] Rsdp { get; }
    public byte[] Xsdt { get; }
    public ulong[] XsdtEntries { get; }
    public byte[] Fadt { get; }
    public byte[] Madt { get; }
    public ulong DsdtAddress { get; }
    public byte[] Dsdt { get; }

    public IEnumerable<byte[]> Tables => [Xsdt, Fadt, Madt, Dsdt];

    public static string Signature(byte[] table) => Encoding.ASCII.GetString(table, 0, 4);

    public static byte Sum(ReadOnlySpan<byte> data)
    {
        byte sum = 0;
        foreach (byte b in data) sum += b;
        return sum;
    }

    /// <summary>MADT subtables as (type, bytes).</summary>
    public (byte Type, byte[] Bytes)[] MadtEntries()
    {
        var entries = new List<(byte, byte[])>();
        int offset = 44;
        while (offset < Madt.Length)
        {
            int length = Madt[offset + 1];
            Assert.True(length >= 2, $"MADT entry at {offset} has length {length}");
            entries.Add((Madt[offset], Madt.AsSpan(offset, length).ToArray()));
            offset += length;
        }
        Assert.Equal(Madt.Length, offset);
        return entries.ToArray();
    }

    /// <summary>The table at a guest address, sized by its header's length field.</summary>
    public byte[] TableAt(ulong address)
    {
        Assert.InRange(address, _address, _address + (ulong)_blob.Length - 36);
        int offset = (int)(address - _address);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(_blob.AsSpan(offset + 4));
        Assert.InRange(offset + length, offset + 36, _blob.Length);
        return _blob.AsSpan(offset, length).ToArray();
    }
}
