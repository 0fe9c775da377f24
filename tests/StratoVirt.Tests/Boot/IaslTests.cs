using System.Text.RegularExpressions;
using StratoVirt.Boot.Acpi;
using Xunit;

namespace StratoVirt.Tests.Boot;

/// <summary>
/// Cross-checks our tables with ACPICA's own disassembler and compiler, <c>iasl</c> (Debian package acpica-tools).
/// </summary>
[Trait("Level", "Unit")]
public class IaslTests
{
    private const int Cpus = 4;
    private static readonly VirtioMmioWindow[] Devices = AcpiTablesTests.ThreeDevices;

    private static AcpiBlob Tables() =>
        new(AcpiTables.Build(AcpiTables.DefaultAddress, new AcpiConfig(Cpus, Devices)), AcpiTables.DefaultAddress);

    private static byte[] TableBySignature(AcpiBlob acpi, string signature) => signature switch
    {
        "DSDT" => acpi.Dsdt,
        "FACP" => acpi.Fadt,
        "APIC" => acpi.Madt,
        "XSDT" => acpi.Xsdt,
        _ => throw new ArgumentException(signature),
    };

    [Theory]
    [InlineData("DSDT")]
    [InlineData("FACP")]
    [InlineData("APIC")]
    [InlineData("XSDT")]
    public void TableSurvivesDisassemblyAndRecompilation(string signature)
    {
        byte[] table = TableBySignature(Tables(), signature);
        using var dir = new TempDir();
        string dat = dir.Write("table.dat", table);

        Iasl(dir.Path, "-d", dat);
        // -oa: no optimisations, so the AML comes back exactly as the disassembler read it.
        Iasl(dir.Path, "-oa", "-p", "again", "table.dsl");
        byte[] again = File.ReadAllBytes(System.IO.Path.Combine(dir.Path, "again.aml"));

        // Only the checksum (byte 9) and the compiler id and revision (bytes 28..35) may differ.
        Assert.Equal(table.Length, again.Length);
        Assert.Equal(table[..9], again[..9]);
        Assert.Equal(table[10..28], again[10..28]);
        Assert.Equal(table[36..], again[36..]);
    }

    [Fact]
    public void DecompiledDsdtShowsEveryDeviceAndS5()
    {
        string asl = Decompile(Tables().Dsdt);

        Assert.Contains("Name (_S5, Package (0x04) { 0x05, Zero, Zero, Zero })", asl);
        Assert.Contains("Device (COM1) { Name (_HID, EisaId (\"PNP0501\")) Name (_UID, Zero) Name (_CRS, ResourceTemplate () "
            + "{ IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08, ) "
            + "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { 0x00000004, } }) }", asl);
        for (int i = 0; i < Devices.Length; i++)
        {
            string uid = i switch { 0 => "Zero", 1 => "One", _ => $"0x{i:X2}" };
            Assert.Contains($"Device (V{i:D3}) {{ Name (_HID, \"LNRO0005\") Name (_UID, {uid}) Name (_CRS, ResourceTemplate () "
                + $"{{ Memory32Fixed (ReadWrite, 0x{Devices[i].Base:X8}, 0x{Devices[i].Size:X8}, ) "
                + $"Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) {{ 0x{Devices[i].Irq:X8}, }} }}) }}", asl);
        }
        Assert.Equal(Devices.Length, Regex.Count(asl, "LNRO0005"));
    }

    [Fact]
    public void DecompiledFadtDescribesAHardwareReducedPlatform()
    {
        var acpi = Tables();
        string text = Decompile(acpi.Fadt);

        Assert.Contains("Hardware Reduced (V5) : 1", text);
        Assert.Contains("Reset Register Supported (V2) : 1", text);
        Assert.Contains("8042 Present on ports 60/64 (V2) : 1", text);
        Assert.Contains("CMOS RTC Not Present (V5) : 0", text);
        Assert.Contains("FADT Minor Revision : 03", text);
        Assert.Contains($"DSDT Address : {acpi.DsdtAddress:X16}", text);
        AssertIoRegister(text, "Reset Register", AcpiPorts.Reset);
        AssertIoRegister(text, "Sleep Control Register", AcpiPorts.SleepControl);
        AssertIoRegister(text, "Sleep Status Register", AcpiPorts.SleepStatus);
        Assert.Contains($"Value to cause reset : {AcpiPorts.ResetValue:X2}", text);
    }

    [Fact]
    public void DecompiledMadtListsEveryProcessorAndTheIoApic()
    {
        string text = Decompile(Tables().Madt);

        Assert.Equal(Cpus, Regex.Count(text, @"Subtable Type : 00 \[Processor Local APIC\]"));
        Assert.Equal(Cpus, Regex.Count(text, "Processor Enabled : 1"));
        Assert.Matches(@"Subtable Type : 01 \[I/O APIC\] .*? I/O Apic ID : FE .*? Address : FEC00000 .*? Interrupt : 00000000 ", text);
        Assert.Contains("Subtable Type : 04 [Local APIC NMI]", text);
        Assert.DoesNotContain("Interrupt Source Override", text);
    }

    private static byte[] Q35Table(string signature, byte lastBus = 0xFF)
    {
        var config = new Q35AcpiConfig(2, new FixedAcpiPorts(0x600, 0x604, 0x608, 0xCF9, 0x06), 9, 5, 0xB000_0000,
            0xC000_0000, 0x3000_0000, 0x1_0000_0000, 0x8_0000_0000, lastBus);
        byte[] blob = Q35Tables.Build(AcpiTables.DefaultAddress, config);
        for (int at = 16; at + 8 <= blob.Length; at += 16)
        {
            if (System.Text.Encoding.ASCII.GetString(blob, at, 4) != signature) continue;
            int length = BitConverter.ToInt32(blob, at + 4);
            return blob[at..(at + length)];
        }
        throw new InvalidOperationException($"no {signature} in the q35 tables");
    }

    [Theory]
    [InlineData("DSDT")]
    [InlineData("FACP")]
    [InlineData("MCFG")]
    [InlineData("FACS")]
    public void Q35TableDecompilesWithoutErrors(string signature)
    {
        string text = Decompile(Q35Table(signature));
        Assert.Contains(signature == "FACP" ? "Signature : \"FACP\"" : signature, text);
    }

    [Fact]
    public void Q35EcamAndTheRootBridgeCoverOnlyTheBusesInUse()
    {
        // pcie.0 and two root ports: buses 0-2 in the root bridge's _CRS and in MCFG (whose last bus Linux probes
        // up to for peer host bridges).
        Assert.Contains("WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, 0x0000, 0x0002, 0x0000, 0x0003,",
            Decompile(Q35Table("DSDT", lastBus: 2)));
        Assert.Matches(@"Base Address : 00000000B0000000 .*? Segment Group Number : 0000 .*? Start Bus Number : 00 .*? End Bus Number : 02 ",
            Decompile(Q35Table("MCFG", lastBus: 2)));
    }

    [Fact]
    public void Q35TablesDescribeThePciRootBridgeEcamAndFixedHardware()
    {
        string dsdt = Decompile(Q35Table("DSDT"));
        Assert.Contains("Device (PCI0) { Name (_HID, EisaId (\"PNP0A08\")) Name (_CID, EisaId (\"PNP0A03\"))", dsdt);
        Assert.Contains("WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, 0x0000, 0x00FF, 0x0000, 0x0100,", dsdt);
        Assert.Contains("DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite, 0x00000000, 0xC0000000, 0xEFFFFFFF, 0x00000000, 0x30000000,", dsdt);
        Assert.Contains("QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite, 0x0000000000000000, 0x0000000100000000, 0x00000008FFFFFFFF,", dsdt);

        // _PRT: INTA#-INTD# of every slot straight to GSIs 16-19, rotated by slot (as the devices raise them).
        Assert.Contains("Name (_PRT, Package (0x80) { Package (0x04) { 0xFFFF, Zero, Zero, 0x10 }, Package (0x04) { 0xFFFF, One, Zero, 0x11 },", dsdt);
        Assert.Contains("Package (0x04) { 0x0003FFFF, Zero, Zero, 0x13 }, Package (0x04) { 0x0003FFFF, One, Zero, 0x10 },", dsdt);
        // _OSC hands the capabilities buffer back as the OS gave it: every control it asks for (native PCIe hotplug)
        // is granted, with no error bits.
        Assert.Contains("Method (_OSC, 4, NotSerialized) { Return (Arg3) }", dsdt);

        string mcfg = Decompile(Q35Table("MCFG"));
        Assert.Matches(@"Base Address : 00000000B0000000 .*? End Bus Number : FF", mcfg);

        string fadt = Decompile(Q35Table("FACP"));
        Assert.Matches(@"PM1A Event Block Address : 00000600 .*? PM1A Control Block Address : 00000604 ", fadt);
        Assert.Matches(@"PM Timer Block Address : 00000608 ", fadt);
        Assert.Matches(@"Hardware Reduced \(V5\) : 0 ", fadt);
        Assert.Matches(@"Reset Register : .*? Address : 0000000000000CF9 .*? Value to cause reset : 06", fadt);
    }

    [Fact]
    public void Q35HasAFixedPowerButtonAndAnActiveHighLevelSci()
    {
        string fadt = Decompile(Q35Table("FACP"));
        Assert.Matches(@"SCI Interrupt : 0009 ", fadt);
        Assert.Matches(@"Control Method Power Button \(V1\) : 0 ", fadt); // the fixed-feature button
        Assert.Matches(@"Control Method Sleep Button \(V1\) : 1 ", fadt);
        string madt = Regex.Replace(Decompile(Q35Table("APIC")), @"\[[0-9A-F]{3}h \d{4} \d\] ", ""); // offsets out
        Assert.Matches(@"Subtable Type : 02 \[Interrupt Source Override\] Length : 0A Bus : 00 Source : 09 Interrupt : 00000009 "
            + @"Flags \(decoded below\) : 000D Polarity : 1 Trigger Mode : 3 ", madt);
    }

    /// <summary>One byte-wide SystemIO register in iasl's FADT listing.</summary>
    private static void AssertIoRegister(string text, string name, ushort port) =>
        Assert.Matches($@"{name} : \[Generic Address Structure\] .*? Space ID : 01 \[SystemIO\] .*? Bit Width : 08 "
            + $@".*? Encoded Access Width : 01 \[Byte Access:8\] .*? Address : {port:X16} ", text);

    /// <summary>iasl -d output with comments removed and whitespace collapsed, so assertions read like ASL.</summary>
    private static string Decompile(byte[] table)
    {
        using var dir = new TempDir();
        string dat = dir.Write("table.dat", table);
        Iasl(dir.Path, "-d", dat);
        string text = File.ReadAllText(System.IO.Path.Combine(dir.Path, "table.dsl"));
        text = Regex.Replace(text, @"\s*/\*.*?\*/", "", RegexOptions.Singleline);
        text = Regex.Replace(text, @"//[^\n]*", " ");
        return Regex.Replace(text, @"\s+", " ");
    }

    /// <summary>Runs iasl and returns its output; fails the test on a non-zero exit or an error message.</summary>
    private static string Iasl(string workingDirectory, params string[] args)
    {
        var (exitCode, stdout, stderr) = HostTool.Run("iasl", "acpica-tools", workingDirectory, args);
        string output = stdout + stderr;
        Assert.True(exitCode == 0, $"iasl {string.Join(' ', args)} exited {exitCode}:\n{output}");
        Assert.DoesNotMatch(@"\b[1-9][0-9]* Errors?\b", output);
        Assert.DoesNotMatch(@"\b[1-9][0-9]* Warnings?\b", output);
        return output;
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("strv-iasl-").FullName;

        public string Write(string name, byte[] bytes)
        {
            string file = System.IO.Path.Combine(Path, name);
            File.WriteAllBytes(file, bytes);
            return file;
        }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
