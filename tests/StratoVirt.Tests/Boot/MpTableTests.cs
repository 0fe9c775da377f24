using System.Buffers.Binary;
using System.Text;
using StratoVirt.Boot;
using Xunit;

namespace StratoVirt.Tests.Boot;

[Trait("Level", "Unit")]
public class MpTableTests
{
    private const ulong Address = MpTable.DefaultAddress;

    private static byte Sum(ReadOnlySpan<byte> data)
    {
        byte sum = 0;
        foreach (byte b in data) sum += b;
        return sum;
    }

    private static (byte Type, byte[] Bytes)[] Entries(byte[] table)
    {
        var config = table.AsSpan(16);
        int length = BinaryPrimitives.ReadUInt16LittleEndian(config[4..]);
        var entries = new List<(byte, byte[])>();
        int offset = 44;
        while (offset < length)
        {
            byte type = config[offset];
            int size = type == 0 ? 20 : 8;
            Assert.True(type <= 4, $"unknown entry type {type} at {offset}");
            entries.Add((type, config.Slice(offset, size).ToArray()));
            offset += size;
        }
        Assert.Equal(length, offset);
        return entries.ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(254)]
    public void FloatingPointerIsValidAndPointsAtTheConfigTable(int cpus)
    {
        byte[] table = MpTable.Build(Address, cpus);

        Assert.Equal("_MP_", Encoding.ASCII.GetString(table, 0, 4));
        Assert.Equal((uint)(Address + 16), BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(4)));
        Assert.Equal(1, table[8]); // 16-byte units
        Assert.Equal(4, table[9]); // spec 1.4
        Assert.Equal(0, Sum(table.AsSpan(0, 16)));
        Assert.Equal(0, table[11]); // feature byte 1: a configuration table follows
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(254)]
    public void ConfigTableHeaderChecksumAndLengthAreValid(int cpus)
    {
        byte[] table = MpTable.Build(Address, cpus);
        var config = table.AsSpan(16);

        Assert.Equal("PCMP", Encoding.ASCII.GetString(config[..4]));
        Assert.Equal(config.Length, BinaryPrimitives.ReadUInt16LittleEndian(config[4..]));
        Assert.Equal(MpTable.Size(cpus), table.Length);
        Assert.Equal(4, config[6]);
        Assert.Equal(0, Sum(config));
        Assert.Equal(cpus + 20, BinaryPrimitives.ReadUInt16LittleEndian(config[34..]));
        Assert.Equal(ApicLayout.LocalApicAddress, BinaryPrimitives.ReadUInt32LittleEndian(config[36..]));
        Assert.StartsWith("STRVRT", Encoding.ASCII.GetString(config.Slice(8, 8)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(254)]
    public void HasOneEntryPerCpuAndTheFixedEntries(int cpus)
    {
        var entries = Entries(MpTable.Build(Address, cpus));

        Assert.Equal(cpus, entries.Count(e => e.Type == 0));
        Assert.Single(entries, e => e.Type == 1);
        Assert.Single(entries, e => e.Type == 2);
        Assert.Equal(16, entries.Count(e => e.Type == 3));
        Assert.Equal(2, entries.Count(e => e.Type == 4));
        Assert.Equal("ISA   ", Encoding.ASCII.GetString(entries.Single(e => e.Type == 1).Bytes, 2, 6));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(254)]
    public void OnlyCpuZeroIsTheBootstrapProcessor(int cpus)
    {
        var processors = Entries(MpTable.Build(Address, cpus)).Where(e => e.Type == 0).Select(e => e.Bytes).ToArray();

        for (int i = 0; i < cpus; i++)
        {
            Assert.Equal(i, processors[i][1]); // APIC id
            Assert.Equal(0x14, processors[i][2]);
            Assert.Equal(1, processors[i][3] & 1); // enabled
            Assert.Equal(i == 0, (processors[i][3] & 2) != 0);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(253)]
    [InlineData(254)]
    public void IoApicIdIsUniqueAndIsaIrqsMapToTheSamePin(int cpus)
    {
        var entries = Entries(MpTable.Build(Address, cpus));
        var apicIds = entries.Where(e => e.Type == 0).Select(e => e.Bytes[1]).ToHashSet();
        byte[] ioapic = entries.Single(e => e.Type == 2).Bytes;

        byte id = ioapic[1];
        Assert.True(id < 0xFF);
        Assert.DoesNotContain(id, apicIds);
        Assert.Equal(0x11, ioapic[2]);
        Assert.Equal(1, ioapic[3]);
        Assert.Equal(0xFEC00000u, BinaryPrimitives.ReadUInt32LittleEndian(ioapic.AsSpan(4)));

        var interrupts = entries.Where(e => e.Type == 3).Select(e => e.Bytes).ToArray();
        for (int irq = 0; irq < 16; irq++)
        {
            Assert.Equal(0, interrupts[irq][1]); // INT
            Assert.Equal(irq, interrupts[irq][5]); // source bus IRQ
            Assert.Equal(id, interrupts[irq][6]);
            Assert.Equal(irq, interrupts[irq][7]); // I/O APIC pin
        }
    }

    [Fact]
    public void LocalInterruptsAreExtIntOnLint0AndNmiOnLint1()
    {
        var locals = Entries(MpTable.Build(Address, 2)).Where(e => e.Type == 4).Select(e => e.Bytes).ToArray();

        Assert.Equal(3, locals[0][1]); // ExtINT
        Assert.Equal(0, locals[0][7]);
        Assert.Equal(1, locals[1][1]); // NMI
        Assert.Equal(1, locals[1][7]);
        Assert.All(locals, l => Assert.Equal(0xFF, l[6])); // every local APIC
    }

    [Fact]
    public void FitsInTheBiosAreaForTheLargestGuest()
    {
        Assert.True(MpTable.DefaultAddress + (ulong)MpTable.Build(MpTable.DefaultAddress, 254).Length <= 0x100000);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(255)]
    [InlineData(-1)]
    public void RejectsCpuCountsAnxApicTableCannotName(int cpus)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MpTable.Build(Address, cpus));
    }

    [Fact]
    public void RejectsAMisalignedAddress()
    {
        Assert.Throws<ArgumentException>(() => MpTable.Build(Address + 8, 1));
    }
}
