using System.Buffers.Binary;
using System.Text;
using StratoVirt.Boot;
using StratoVirt.Boot.Acpi;
using Xunit;

namespace StratoVirt.Tests.Boot;

[Trait("Level", "Unit")]
public class AcpiTablesTests
{
    private const ulong Address = AcpiTables.DefaultAddress;

    internal static readonly VirtioMmioWindow[] ThreeDevices =
    [
        new(0xD000_0000, 0x1000, 5),
        new(0xD000_1000, 0x1000, 6),
        new(0xD000_2000, 0x1000, 7),
    ];

    private static AcpiBlob Build(int cpus, params VirtioMmioWindow[] devices) =>
        new(AcpiTables.Build(Address, new AcpiConfig(cpus, devices)), Address);

    private static int Count(byte[] haystack, string needle)
    {
        byte[] n = Encoding.ASCII.GetBytes(needle);
        int count = 0;
        for (int i = haystack.AsSpan().IndexOf(n); i >= 0;)
        {
            count++;
            int next = haystack.AsSpan(i + 1).IndexOf(n);
            i = next < 0 ? -1 : i + 1 + next;
        }
        return count;
    }

    [Fact]
    public void RsdpIsRevision2WithBothChecksums()
    {
        var acpi = Build(2, ThreeDevices);

        Assert.Equal("RSD PTR ", Encoding.ASCII.GetString(acpi.Rsdp, 0, 8));
        Assert.Equal(2, acpi.Rsdp[15]);
        Assert.Equal(36u, BinaryPrimitives.ReadUInt32LittleEndian(acpi.Rsdp.AsSpan(20)));
        Assert.Equal(0, AcpiBlob.Sum(acpi.Rsdp.AsSpan(0, 20)));
        Assert.Equal(0, AcpiBlob.Sum(acpi.Rsdp));
        Assert.Equal("STRVRT", Encoding.ASCII.GetString(acpi.Rsdp, 9, 6));
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 3)]
    [InlineData(254, 3)]
    public void EveryTableSumsToZeroAndIsAligned(int cpus, int devices)
    {
        var acpi = Build(cpus, ThreeDevices[..devices]);

        Assert.All(acpi.Tables, t => Assert.Equal(0, AcpiBlob.Sum(t)));
        Assert.All(acpi.XsdtEntries.Append(acpi.DsdtAddress), a => Assert.Equal(0ul, a % 16));
        Assert.All(acpi.Tables, t => Assert.Equal("STRVRT", Encoding.ASCII.GetString(t, 10, 6)));
    }

    [Fact]
    public void RsdpPointsAtXsdtWhichPointsAtFadtAndMadt()
    {
        var acpi = Build(2, ThreeDevices);

        Assert.Equal("XSDT", AcpiBlob.Signature(acpi.Xsdt));
        Assert.Equal(2, acpi.XsdtEntries.Length);
        Assert.Equal(["FACP", "APIC"], acpi.XsdtEntries.Select(a => AcpiBlob.Signature(acpi.TableAt(a))));
    }

    [Fact]
    public void FadtIsHardwareReducedWithResetAndSleepRegisters()
    {
        var fadt = Build(1).Fadt;

        Assert.Equal(276, fadt.Length);
        Assert.Equal(6, fadt[8]);
        Assert.Equal(3, fadt[131]); // minor version
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(112));
        Assert.True((flags & (1 << 20)) != 0, "HW_REDUCED_ACPI");
        Assert.True((flags & (1 << 10)) != 0, "RESET_REG_SUP");
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(40))); // 32-bit DSDT unused

        AssertIoRegister(fadt, 116, AcpiPorts.Reset);
        Assert.Equal(AcpiPorts.ResetValue, fadt[128]);
        AssertIoRegister(fadt, 244, AcpiPorts.SleepControl);
        AssertIoRegister(fadt, 256, AcpiPorts.SleepStatus);

        ushort bootArch = BinaryPrimitives.ReadUInt16LittleEndian(fadt.AsSpan(109));
        Assert.True((bootArch & (1 << 1)) != 0, "8042 present");
        Assert.True((bootArch & (1 << 5)) == 0, "CMOS RTC must not be reported absent");
        Assert.NotEqual(0, BinaryPrimitives.ReadUInt16LittleEndian(fadt.AsSpan(46))); // SCI is never IRQ0
    }

    private static void AssertIoRegister(byte[] fadt, int offset, ushort port)
    {
        Assert.Equal(1, fadt[offset]); // SystemIO
        Assert.Equal(8, fadt[offset + 1]);
        Assert.Equal(0, fadt[offset + 2]);
        Assert.Equal(1, fadt[offset + 3]); // byte access
        Assert.Equal(port, BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(offset + 4)));
    }

    [Fact]
    public void FadtXDsdtPointsAtDsdt()
    {
        var acpi = Build(2, ThreeDevices);

        Assert.Equal("DSDT", AcpiBlob.Signature(acpi.Dsdt));
        Assert.Equal(2, acpi.Dsdt[8]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(254)]
    public void MadtHasOneEnabledLocalApicPerCpuAndTheIoApic(int cpus)
    {
        var acpi = Build(cpus);
        var entries = acpi.MadtEntries();

        Assert.Equal(ApicLayout.LocalApicAddress, BinaryPrimitives.ReadUInt32LittleEndian(acpi.Madt.AsSpan(36)));
        var lapics = entries.Where(e => e.Type == 0).Select(e => e.Bytes).ToArray();
        Assert.Equal(cpus, lapics.Length);
        for (int i = 0; i < cpus; i++)
        {
            Assert.Equal(i, lapics[i][2]); // processor UID
            Assert.Equal(i, lapics[i][3]); // APIC id
            Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(lapics[i].AsSpan(4)));
        }

        byte[] ioapic = entries.Single(e => e.Type == 1).Bytes;
        Assert.Equal(ApicLayout.IoApicId, ioapic[2]);
        Assert.DoesNotContain(ioapic[2], lapics.Select(l => l[3]));
        Assert.Equal(0xFEC00000u, BinaryPrimitives.ReadUInt32LittleEndian(ioapic.AsSpan(4)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(ioapic.AsSpan(8)));

        Assert.DoesNotContain(entries, e => e.Type == 2); // no interrupt source overrides
        byte[] nmi = entries.Single(e => e.Type == 4).Bytes;
        Assert.Equal(0xFF, nmi[2]);
        Assert.Equal(1, nmi[5]); // LINT1
    }

    [Fact]
    public void MadtAndMpTableAgreeOnTheIoApicId()
    {
        byte[] mp = MpTable.Build(MpTable.DefaultAddress, 8);
        int ioapicEntry = 16 + 44 + 8 * 20 + 8;
        Assert.Equal(2, mp[ioapicEntry]);

        var ioapic = Build(8).MadtEntries().Single(e => e.Type == 1).Bytes;
        Assert.Equal(mp[ioapicEntry + 1], ioapic[2]);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void DsdtNamesEveryVirtioDeviceAndS5(int devices)
    {
        var dsdt = Build(1, ThreeDevices[..devices]).Dsdt;

        Assert.Equal(devices, Count(dsdt, "LNRO0005"));
        Assert.Equal(1, Count(dsdt, "_S5_"));
        for (int i = 0; i < devices; i++)
            Assert.Equal(1, Count(dsdt, $"V{i:D3}"));
    }

    [Fact]
    public void DsdtCarriesEachDeviceWindowAndIrq()
    {
        var dsdt = Build(1, ThreeDevices).Dsdt;

        foreach (var d in ThreeDevices)
        {
            byte[] memory = new byte[12];
            memory[0] = 0x86; memory[1] = 9; memory[3] = 1;
            BinaryPrimitives.WriteUInt32LittleEndian(memory.AsSpan(4), (uint)d.Base);
            BinaryPrimitives.WriteUInt32LittleEndian(memory.AsSpan(8), d.Size);
            byte[] irq = [0x89, 6, 0, 0x03, 1, (byte)d.Irq, 0, 0, 0];
            Assert.True(dsdt.AsSpan().IndexOf([.. memory, .. irq]) > 0, $"no _CRS for 0x{d.Base:x}");
        }
    }

    [Fact]
    public void LargestGuestFitsBelowTheMpTable()
    {
        var devices = Enumerable.Range(0, 64).Select(i => new VirtioMmioWindow(0xD000_0000 + (ulong)i * 0x1000, 0x1000, 5)).ToArray();
        byte[] blob = AcpiTables.Build(AcpiTables.DefaultAddress, new AcpiConfig(254, devices));

        Assert.True(AcpiTables.DefaultAddress + (ulong)blob.Length <= MpTable.DefaultAddress, $"{blob.Length} bytes");
    }

    [Fact]
    public void RejectsBadConfigurations()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(Address, new AcpiConfig(0, [])));
        Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(Address, new AcpiConfig(255, [])));
        Assert.Throws<ArgumentException>(() => AcpiTables.Build(Address + 4, new AcpiConfig(1, [])));
        Assert.Throws<ArgumentException>(() => AcpiTables.Build(Address, new AcpiConfig(1, [new(0xFFFF_F000, 0x2000, 5)])));
        Assert.Throws<ArgumentException>(() => AcpiTables.Build(Address, new AcpiConfig(1, [new(0xD000_0000, 0x1000, 24)])));
    }

    [Theory]
    [InlineData(0x34, true)] // SLP_TYP 5 | SLP_EN
    [InlineData(0x14, false)] // SLP_TYP 5 without SLP_EN
    [InlineData(0x2C, false)] // SLP_TYP 3 | SLP_EN
    [InlineData(0x20, false)] // S0
    public void SleepControlWritesDecode(byte value, bool powerOff)
    {
        Assert.Equal(powerOff, AcpiPorts.IsPowerOff(value));
    }

    [Fact]
    public void S5PackageCarriesTheSleepTypeThePortsDecode()
    {
        var dsdt = Build(1).Dsdt;
        // Name(_S5_, Package(4) { 5, 0, 0, 0 })
        byte[] expected = [0x08, (byte)'_', (byte)'S', (byte)'5', (byte)'_', 0x12, 0x07, 0x04, 0x0A, AcpiPorts.S5SleepType, 0, 0, 0];
        Assert.True(dsdt.AsSpan().IndexOf(expected) > 0);
    }
}
