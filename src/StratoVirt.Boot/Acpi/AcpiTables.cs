namespace StratoVirt.Boot.Acpi;

/// <summary>
/// Builds the ACPI tables of a hardware-reduced x86 microVM as one blob: RSDP, XSDT, FADT, MADT, DSDT, each
/// 16-byte aligned and addressed absolutely from where the blob will sit in guest memory.
/// </summary>
public static class AcpiTables
{
    /// <summary>
    /// Where the blob goes by default: the start of the 0xE0000-0xFFFFF range Linux scans for "RSD PTR ", below the
    /// MP table at <see cref="MpTable.DefaultAddress"/>. The VMM also passes it in boot_params.acpi_rsdp_addr.
    /// </summary>
    public const ulong DefaultAddress = 0xE0000;

    /// <summary>Alignment of every table in the blob; also the RSDP's required alignment.</summary>
    public const int Alignment = 16;

    internal const int RsdpSize = 36;
    private const byte RsdpRevision = 2; // ACPI 2.0+: has the XSDT address
    private const int RsdpChecksumLength = 20; // the ACPI 1.0 part
    private const byte XsdtRevision = 1;

    /// <summary>The tables for <paramref name="config"/>, to be written at <paramref name="rsdpAddress"/>.</summary>
    public static byte[] Build(ulong rsdpAddress, AcpiConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        ApicLayout.CheckCpuCount(config.CpuCount, nameof(config));
        if (rsdpAddress % Alignment != 0)
            throw new ArgumentException("the RSDP must be 16-byte aligned", nameof(rsdpAddress));
        CheckVirtioDevices(config.VirtioDevices);

        byte[] dsdt = Dsdt.Build(config.VirtioDevices);
        byte[] madt = Madt.Build(config.CpuCount);

        int xsdtOffset = Align(RsdpSize);
        int xsdtSize = AcpiHeader.Size + 2 * sizeof(ulong);
        int fadtOffset = Align(xsdtOffset + xsdtSize);
        int madtOffset = Align(fadtOffset + Fadt.Size);
        int dsdtOffset = Align(madtOffset + madt.Length);
        int total = dsdtOffset + dsdt.Length;
        if (rsdpAddress + (ulong)total > 1UL << 32)
            throw new ArgumentException("the ACPI tables must lie below 4 GiB", nameof(rsdpAddress));

        byte[] fadt = Fadt.Build(rsdpAddress + (ulong)dsdtOffset);
        byte[] xsdt = BuildXsdt(rsdpAddress + (ulong)fadtOffset, rsdpAddress + (ulong)madtOffset);

        var blob = new byte[total];
        BuildRsdp(rsdpAddress + (ulong)xsdtOffset).CopyTo(blob, 0);
        xsdt.CopyTo(blob, xsdtOffset);
        fadt.CopyTo(blob, fadtOffset);
        madt.CopyTo(blob, madtOffset);
        dsdt.CopyTo(blob, dsdtOffset);
        return blob;
    }

    internal static void CheckVirtioDevices(IReadOnlyList<VirtioMmioWindow> devices)
    {
        ArgumentNullException.ThrowIfNull(devices);
        if (devices.Count > Dsdt.MaxVirtioDevices)
            throw new ArgumentException($"at most {Dsdt.MaxVirtioDevices} virtio devices", nameof(devices));
        foreach (var d in devices)
        {
            if (d.Size == 0 || d.Base > (1UL << 32) - d.Size)
                throw new ArgumentException($"virtio window 0x{d.Base:x}+0x{d.Size:x} must be non-empty and below 4 GiB", nameof(devices));
            if (d.Irq >= ApicLayout.IoApicPins)
                throw new ArgumentException($"virtio IRQ {d.Irq} is not an I/O APIC pin (0..{ApicLayout.IoApicPins - 1})", nameof(devices));
        }
    }

    internal static byte[] BuildRsdp(ulong xsdtAddress)
    {
        var rsdp = new byte[RsdpSize];
        var w = new ByteWriter(rsdp);
        w.Ascii("RSD PTR ", 8);
        w.U8(0); // checksum of the first 20 bytes
        w.Ascii(AcpiHeader.OemId, 6);
        w.U8(RsdpRevision);
        w.U32(0); // no RSDT: ACPI 2.0+ readers use the XSDT
        w.U32(RsdpSize);
        w.U64(xsdtAddress);
        w.U8(0); // extended checksum of all 36 bytes
        w.Zeros(3);
        ByteChecksum.Seal(rsdp.AsSpan(0, RsdpChecksumLength), 8);
        ByteChecksum.Seal(rsdp, 32);
        return rsdp;
    }

    internal static byte[] BuildXsdt(params ReadOnlySpan<ulong> entries)
    {
        var xsdt = new byte[AcpiHeader.Size + entries.Length * sizeof(ulong)];
        var w = new ByteWriter(xsdt.AsSpan(AcpiHeader.Size));
        foreach (ulong entry in entries) w.U64(entry);
        AcpiHeader.WriteAndSeal(xsdt, "XSDT", XsdtRevision, "STRVXSDT");
        return xsdt;
    }

    private static int Align(int offset) => (offset + Alignment - 1) & ~(Alignment - 1);
}
