namespace StratoVirt.Boot.Acpi;

/// <summary>
/// The Multiple APIC Description Table ("APIC"): one local APIC per vCPU, the I/O APIC, and NMI on LINT1.
/// No interrupt source overrides: KVM's default routing wires ISA IRQ n to GSI n, which is ACPI's default too.
/// </summary>
internal static class Madt
{
    public const byte Revision = 5; // ACPI 6.3

    internal const int FixedSize = AcpiHeader.Size + 8;
    internal const byte TypeLocalApic = 0;
    internal const byte TypeIoApic = 1;
    internal const byte TypeLocalApicNmi = 4;
    internal const int LocalApicSize = 8;
    internal const int IoApicSize = 12;
    internal const int LocalApicNmiSize = 6;

    // KVM's in-kernel irqchip includes the dual 8259 as well.
    internal const uint FlagPcAtCompatible = 1;
    internal const uint LocalApicEnabled = 1;

    private const byte AllProcessors = 0xFF;
    private const ushort ConformsToBus = 0;

    public static int Size(int cpuCount) => FixedSize + cpuCount * LocalApicSize + IoApicSize + LocalApicNmiSize;

    public static byte[] Build(int cpuCount)
    {
        var table = new byte[Size(cpuCount)];
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

        w.U8(TypeLocalApicNmi);
        w.U8(LocalApicNmiSize);
        w.U8(AllProcessors);
        w.U16(ConformsToBus);
        w.U8(1); // LINT1

        AcpiHeader.WriteAndSeal(table, "APIC", Revision, "STRVAPIC");
        return table;
    }
}
