namespace StratoVirt.Boot;

/// <summary>
/// Intel MultiProcessor Specification 1.4 tables, which tell an x86 guest booted without ACPI (<c>acpi=off</c>)
/// about its vCPUs, the I/O APIC and how the ISA interrupts reach it.
/// </summary>
public static class MpTable
{
    /// <summary>Start of the BIOS ROM area, one of the ranges Linux scans for the "_MP_" signature.</summary>
    public const ulong DefaultAddress = 0xF0000;

    /// <summary>ISA interrupts described by I/O interrupt entries.</summary>
    public const int IsaIrqCount = 16;

    internal const int FloatingPointerSize = 16;
    internal const int HeaderSize = 44;
    internal const int ProcessorEntrySize = 20;
    internal const int EntrySize = 8; // every other entry type

    internal const byte EntryProcessor = 0;
    internal const byte EntryBus = 1;
    internal const byte EntryIoApic = 2;
    internal const byte EntryIoInterrupt = 3;
    internal const byte EntryLocalInterrupt = 4;

    internal const byte InterruptInt = 0;
    internal const byte InterruptNmi = 1;
    internal const byte InterruptExtInt = 3;

    internal const byte CpuEnabled = 1 << 0;
    internal const byte CpuBootstrap = 1 << 1;

    private const byte SpecRevision = 4; // 1.4
    private const byte IsaBusId = 0;
    private const byte AllLocalApics = 0xFF;
    private const byte IoApicEnabled = 1;
    private const ushort ConformsToBus = 0; // ISA: edge-triggered, active high

    // Family 6, model 0, stepping 0; FPU and on-chip APIC. Linux only prints these.
    private const uint CpuSignature = 6 << 8;
    private const uint CpuFeatures = (1u << 0) | (1u << 9);

    private const string OemId = "STRVRT";
    private const string ProductId = "STRATOVIRT";

    /// <summary>Bytes <see cref="Build"/> returns for <paramref name="cpuCount"/> vCPUs.</summary>
    public static int Size(int cpuCount) => FloatingPointerSize + ConfigTableSize(cpuCount);

    /// <summary>
    /// The floating pointer structure followed by the configuration table it points at (address + 16), ready to be
    /// written at <paramref name="address"/>.
    /// </summary>
    public static byte[] Build(ulong address, int cpuCount)
    {
        ApicLayout.CheckCpuCount(cpuCount, nameof(cpuCount));
        if (address % 16 != 0)
            throw new ArgumentException("the MP floating pointer must be 16-byte aligned", nameof(address));
        int size = Size(cpuCount);
        if (address + (ulong)size > 1UL << 32)
            throw new ArgumentException("the MP table must lie below 4 GiB", nameof(address));

        var table = new byte[size];
        WriteFloatingPointer(table.AsSpan(0, FloatingPointerSize), (uint)(address + FloatingPointerSize));
        WriteConfigTable(table.AsSpan(FloatingPointerSize), cpuCount);
        return table;
    }

    private static int EntryCount(int cpuCount) => cpuCount + 1 + 1 + IsaIrqCount + 2;

    private static int ConfigTableSize(int cpuCount) =>
        HeaderSize + cpuCount * ProcessorEntrySize + (EntryCount(cpuCount) - cpuCount) * EntrySize;

    private static void WriteFloatingPointer(Span<byte> mpf, uint configTableAddress)
    {
        var w = new ByteWriter(mpf);
        w.Ascii("_MP_", 4);
        w.U32(configTableAddress);
        w.U8(1); // length in 16-byte units
        w.U8(SpecRevision);
        w.U8(0); // checksum, sealed below
        w.Zeros(5); // feature bytes: 0 = a configuration table exists; no IMCR, so virtual-wire mode
        ByteChecksum.Seal(mpf, 10);
    }

    private static void WriteConfigTable(Span<byte> mpc, int cpuCount)
    {
        var w = new ByteWriter(mpc);
        w.Ascii("PCMP", 4);
        w.U16((ushort)mpc.Length);
        w.U8(SpecRevision);
        w.U8(0); // checksum, sealed below
        w.Ascii(OemId, 8);
        w.Ascii(ProductId, 12);
        w.U32(0); // no OEM table
        w.U16(0);
        w.U16((ushort)EntryCount(cpuCount));
        w.U32(ApicLayout.LocalApicAddress);
        w.U16(0); // no extended table
        w.U8(0);
        w.U8(0);

        for (int cpu = 0; cpu < cpuCount; cpu++)
        {
            w.U8(EntryProcessor);
            w.U8((byte)cpu); // APIC id = vCPU index
            w.U8(ApicLayout.LocalApicVersion);
            w.U8((byte)(CpuEnabled | (cpu == 0 ? CpuBootstrap : 0)));
            w.U32(CpuSignature);
            w.U32(CpuFeatures);
            w.Zeros(8);
        }

        w.U8(EntryBus);
        w.U8(IsaBusId);
        w.Ascii("ISA", 6);

        w.U8(EntryIoApic);
        w.U8(ApicLayout.IoApicId);
        w.U8(ApicLayout.IoApicVersion);
        w.U8(IoApicEnabled);
        w.U32(ApicLayout.IoApicAddress);

        // KVM's default routing sends GSI n to I/O APIC pin n, including GSI 0 driven by the in-kernel PIT.
        for (int irq = 0; irq < IsaIrqCount; irq++)
        {
            w.U8(EntryIoInterrupt);
            w.U8(InterruptInt);
            w.U16(ConformsToBus);
            w.U8(IsaBusId);
            w.U8((byte)irq);
            w.U8(ApicLayout.IoApicId);
            w.U8((byte)irq);
        }

        WriteLocalInterrupt(ref w, InterruptExtInt, lint: 0);
        WriteLocalInterrupt(ref w, InterruptNmi, lint: 1);

        ByteChecksum.Seal(mpc[..w.Position], 7);
    }

    private static void WriteLocalInterrupt(ref ByteWriter w, byte type, byte lint)
    {
        w.U8(EntryLocalInterrupt);
        w.U8(type);
        w.U16(ConformsToBus);
        w.U8(IsaBusId);
        w.U8(0);
        w.U8(AllLocalApics);
        w.U8(lint);
    }
}
