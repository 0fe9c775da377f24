namespace StratoVirt.Boot.Acpi;

/// <summary>The fixed ACPI registers of a PC chipset, as I/O ports.</summary>
public readonly record struct FixedAcpiPorts(ushort Pm1Event, ushort Pm1Control, ushort PmTimer, ushort Reset,
    byte ResetValue);

/// <summary>ACPI tables for QEMU's table loader: <paramref name="Tables"/> (etc/acpi/tables) and
/// <paramref name="Rsdp"/> (etc/acpi/rsdp, whose XSDT address at <see cref="AcpiLoaderTables.RsdpXsdtOffset"/> is an
/// offset in Tables); <paramref name="Pointers"/> are the fields of Tables holding offsets in Tables, and
/// <paramref name="Checksummed"/> the tables (start, length) whose checksum byte sits 9 bytes in.</summary>
public sealed record AcpiLoaderTables(byte[] Tables, byte[] Rsdp, IReadOnlyList<(int Offset, int Size)> Pointers,
    IReadOnlyList<(int Start, int Length)> Checksummed)
{
    public const int RsdpXsdtOffset = 24;
    public const int RsdpChecksumOffset = 8, RsdpChecksumLength = 20;
    public const int RsdpExtendedChecksumOffset = 32;
    public const int TableChecksumOffset = AcpiHeader.ChecksumOffset;
}

/// <summary>What the q35 tables describe: the vCPUs, the chipset's ACPI ports, ECAM, the windows the PCI host bridge
/// forwards (32-bit and 64-bit MMIO), and its buses 0 to <paramref name="LastBus"/> (the root bridge's bus range and
/// the buses ECAM is declared for). Linux on x86 takes the last bus of the ECAM declaration as the last bus number
/// in use and, at boot, probes 32 slots on every bus from 1 to it for a peer host bridge, one configuration read
/// (two VM exits through 0xCF8/0xCFC) each: 8160 reads for a range ending at 255.</summary>
public sealed record Q35AcpiConfig(int CpuCount, FixedAcpiPorts Ports, ushort SciIrq, byte S5SleepType,
    ulong EcamBase, ulong Mmio32Base, ulong Mmio32Size, ulong Mmio64Base, ulong Mmio64Size, byte LastBus);

/// <summary>
/// Builds the ACPI tables of the q35 standard VM for direct boot, as one blob: RSDP, XSDT, FADT (fixed hardware,
/// not hardware-reduced), FACS, DSDT (the PCI Express root bridge PCI0 with its windows and an _OSC that grants
/// native PCI Express control, COM1, the RTC, \_S5_),
/// MADT and MCFG (ECAM for the buses of segment 0 the root bridge decodes).
/// </summary>
public static class Q35Tables
{
    private const int FacsSize = 64;
    private const int FacsAlignment = 64;
    private const byte FacsVersion = 2;
    private const byte McfgRevision = 1;
    internal const int McfgSize = AcpiHeader.Size + 8 + 16;

    public static byte[] Build(ulong rsdpAddress, Q35AcpiConfig config)
    {
        if (rsdpAddress % FacsAlignment != 0)
            throw new ArgumentException("the blob must be 64-byte aligned (the FACS's alignment)", nameof(rsdpAddress));
        var (blob, offsets) = Place(config, Align(AcpiTables.RsdpSize, AcpiTables.Alignment), rsdpAddress);
        AcpiTables.BuildRsdp(rsdpAddress + (ulong)offsets.Xsdt).CopyTo(blob, 0);
        return blob;
    }

    /// <summary>
    /// The same tables for firmware that places them itself through QEMU's table loader: every table but the
    /// RSDP in one blob addressed from 0 (each pointer holds its target's offset in the blob), the RSDP apart
    /// (pointing at offset 0, the XSDT), and where the pointers and checksummed tables are.
    /// </summary>
    public static AcpiLoaderTables BuildForLoader(Q35AcpiConfig config)
    {
        var (blob, o) = Place(config, 0, 0);
        return new AcpiLoaderTables(blob, AcpiTables.BuildRsdp((ulong)o.Xsdt),
            [(o.Xsdt + AcpiHeader.Size, 8), (o.Xsdt + AcpiHeader.Size + 8, 8), (o.Xsdt + AcpiHeader.Size + 16, 8),
                (o.Fadt + Fadt.FacsOffset, 4), (o.Fadt + Fadt.XDsdtOffset, 8)],
            [(o.Xsdt, o.XsdtSize), (o.Fadt, Fadt.Size), (o.Madt, o.MadtSize), (o.Mcfg, McfgSize), (o.Dsdt, o.DsdtSize)]);
    }

    private readonly record struct Offsets(int Xsdt, int XsdtSize, int Fadt, int Madt, int MadtSize, int Mcfg, int Dsdt,
        int DsdtSize);

    /// <summary>The tables from <paramref name="start"/> of a blob that will sit at guest address
    /// <paramref name="baseAddress"/>: XSDT, FACS, FADT, MADT, MCFG, DSDT.</summary>
    private static (byte[] Blob, Offsets Offsets) Place(Q35AcpiConfig config, int start, ulong baseAddress)
    {
        ArgumentNullException.ThrowIfNull(config);
        ApicLayout.CheckCpuCount(config.CpuCount, nameof(config));

        byte[] dsdt = BuildDsdt(config);
        byte[] madt = Madt.Build(config.CpuCount, config.SciIrq);
        byte[] mcfg = BuildMcfg(config.EcamBase, config.LastBus);

        int xsdtOffset = start;
        int xsdtSize = AcpiHeader.Size + 3 * sizeof(ulong);
        int facsOffset = Align(xsdtOffset + xsdtSize, FacsAlignment);
        int fadtOffset = Align(facsOffset + FacsSize, AcpiTables.Alignment);
        int madtOffset = Align(fadtOffset + Fadt.Size, AcpiTables.Alignment);
        int mcfgOffset = Align(madtOffset + madt.Length, AcpiTables.Alignment);
        int dsdtOffset = Align(mcfgOffset + mcfg.Length, AcpiTables.Alignment);
        int total = dsdtOffset + dsdt.Length;
        if (baseAddress + (ulong)total > 1UL << 32)
            throw new ArgumentException("the ACPI tables must lie below 4 GiB", nameof(baseAddress));

        ulong At(int offset) => baseAddress + (ulong)offset;
        byte[] fadt = Fadt.BuildFixedHardware(At(dsdtOffset), At(facsOffset), config.Ports, config.SciIrq);
        var blob = new byte[total];
        AcpiTables.BuildXsdt(At(fadtOffset), At(madtOffset), At(mcfgOffset)).CopyTo(blob, xsdtOffset);
        BuildFacs().CopyTo(blob, facsOffset);
        fadt.CopyTo(blob, fadtOffset);
        madt.CopyTo(blob, madtOffset);
        mcfg.CopyTo(blob, mcfgOffset);
        dsdt.CopyTo(blob, dsdtOffset);
        return (blob, new Offsets(xsdtOffset, xsdtSize, fadtOffset, madtOffset, madt.Length, mcfgOffset, dsdtOffset, dsdt.Length));
    }

    private static byte[] BuildFacs()
    {
        var facs = new byte[FacsSize];
        var w = new ByteWriter(facs);
        w.Ascii("FACS", 4);
        w.U32(FacsSize);
        // Hardware signature, waking vectors, global lock and flags stay zero: no S4, no S3 resume path.
        facs[32] = FacsVersion;
        return facs;
    }

    private static byte[] BuildMcfg(ulong ecamBase, byte lastBus)
    {
        var table = new byte[McfgSize];
        var w = new ByteWriter(table.AsSpan(AcpiHeader.Size + 8));
        w.U64(ecamBase);
        w.U16(0); // segment
        w.U8(0); // first bus
        w.U8(lastBus);
        w.U32(0);
        AcpiHeader.WriteAndSeal(table, "MCFG", McfgRevision, "STRVMCFG");
        return table;
    }

    private static byte[] BuildDsdt(Q35AcpiConfig config)
    {
        var aml = new AmlWriter();
        Dsdt.WriteS5(aml, config.S5SleepType);

        aml.BeginScope("\\_SB_");
        aml.BeginDevice("PCI0");
        aml.Name("_HID");
        aml.EisaId("PNP0A08"); // PCI Express root bridge
        aml.Name("_CID");
        aml.EisaId("PNP0A03"); // and a PCI root bridge for older guests
        aml.Name("_SEG");
        aml.Integer(0);
        aml.Name("_BBN");
        aml.Integer(0);
        aml.Name("_UID");
        aml.Integer(0);
        aml.Name("_CRS");
        aml.BeginResourceTemplate();
        aml.AddressSpace(AmlAddressSpace.BusNumber, 2, 0, config.LastBus + 1UL);
        aml.IoPort(0xCF8, 0xCF8, 1, 8);
        aml.AddressSpace(AmlAddressSpace.Io, 2, 0, 0xCF8);
        aml.AddressSpace(AmlAddressSpace.Io, 2, 0xD00, 0x10000 - 0xD00);
        aml.AddressSpace(AmlAddressSpace.Memory, 4, config.Mmio32Base, config.Mmio32Size);
        if (config.Mmio64Size > 0) aml.AddressSpace(AmlAddressSpace.Memory, 8, config.Mmio64Base, config.Mmio64Size);
        aml.End();
        WritePciRouting(aml);
        // _OSC grants the guest every control it asks for (its capabilities buffer comes back unchanged, no error
        // bits), native PCI Express hotplug of the root ports among them.
        aml.BeginMethod("_OSC", 4);
        aml.ReturnArg(3);
        aml.End();
        aml.End();
        Dsdt.WriteCom1(aml);
        Dsdt.WriteRtc(aml);
        aml.End();
        return Dsdt.Seal(aml);
    }

    /// <summary>_PRT: each slot's four interrupt pins straight to IOAPIC GSIs (source 0: no link device), as
    /// <see cref="Q35Layout.IntxGsi"/> routes them.</summary>
    private static void WritePciRouting(AmlWriter aml)
    {
        const int pins = 4;
        aml.Name("_PRT");
        aml.BeginPackage(32 * pins);
        for (int slot = 0; slot < 32; slot++)
        {
            for (int pin = 0; pin < pins; pin++)
            {
                aml.BeginPackage(4);
                aml.Integer(((ulong)slot << 16) | 0xFFFF); // any function of the slot
                aml.Integer((ulong)pin);
                aml.Integer(0);
                aml.Integer(Q35Layout.IntxGsi(slot, pin));
                aml.End();
            }
        }
        aml.End();
    }

    private static int Align(int offset, int alignment) => (offset + alignment - 1) & ~(alignment - 1);
}
