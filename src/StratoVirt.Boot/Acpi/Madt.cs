namespace StratoVirt.Boot.Acpi;

/// <summary>
/// The Multiple APIC Description Table ("APIC"): one local APIC per vCPU, the I/O APIC, and NMI on LINT1.
/// KVM's default routing wires ISA IRQ n to GSI n, which is ACPI's default too; a machine with an SCI (q35) adds
/// one interrupt source override for it, level-triggered and active-high as the VMM drives it (without one the
/// guest would program ACPI's default for the SCI, active-low), as QEMU's q35 does.
/// </summary>
internal static class Madt
{
    public const byte Revision = 5; // ACPI 6.3

    internal const int FixedSize = AcpiHeader.Size + 8;
    internal const byte TypeLocalApic = 0;
    internal const byte TypeIoApic = 1;
    internal const byte TypeInterruptOverride = 2;
    internal const byte TypeLocalApicNmi = 4;
    internal const int InterruptOverrideSize = 10;
    private const ushort ActiveHighLevel = 0b1101; // polarity 01 active high, trigger mode 11 level
    internal const int LocalApicSize = 8;
    internal const int IoApicSize = 12;
    internal const int LocalApicNmiSize = 6;

    // KVM's in-kernel irqchip includes the dual 8259 as well.
    internal const uint FlagPcAtCompatible = 1;
    internal const uint LocalApicEnabled = 1;

    private const byte AllProcessors = 0xFF;
    private const ushort ConformsToBus = 0;

    public static int Size(int cpuCount, bool sciOverride = false) =>
        FixedSize + cpuCount * LocalApicSize + IoApicSize + (sciOverride ? InterruptOverrideSize : 0) + LocalApicNmiSize;

    /// <param name="sciIrq">The ISA IRQ of the SCI, given an override; null: none.</param>
    public static byte[] Build(int cpuCount, ushort? sciIrq = null)
    {
        var table = new byte[Size(cpuCount, sciIrq is not null)];
        var w = new ByteWriter(table.AsSpan(AcpiHeader.Size));
        w.U32(ApicLayout.LocalApicAddress);
        w.U32(FlagPcAtCompatible);

        // In vCPU order, boot vCPU first, so the guest's logical CPU numbers match vCPU indices.
        for (int cpu = 0; cpu < cpuCount; cpu++)
        {
            w.U8(TypeLocalApic);
            w.U8(LocalApicSize);
            w.U8((byte)cpu); // ACPI processor UID
            w.U8((byte)cpu); // APIC id
            w.U32(LocalApicEnabled);
        }

        w.U8(TypeIoApic);
        w.U8(IoApicSize);
        w.U8(ApicLayout.IoApicId);
        w.U8(0);
        w.U32(ApicLayout.IoApicAddress);
        w.U32(0); // GSI base: pin n is GSI n

        if (sciIrq is ushort sci)
        {
            w.U8(TypeInterruptOverride);
            w.U8(InterruptOverrideSize);
            w.U8(0); // ISA bus
            w.U8((byte)sci);
            w.U32(sci); // the same GSI
            w.U16(ActiveHighLevel);
        }

        w.U8(TypeLocalApicNmi);
        w.U8(LocalApicNmiSize);
        w.U8(AllProcessors);
        w.U16(ConformsToBus);
        w.U8(1); // LINT1

        AcpiHeader.WriteAndSeal(table, "APIC", Revision, "STRVAPIC");
        return table;
    }
}
