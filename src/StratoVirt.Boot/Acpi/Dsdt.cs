namespace StratoVirt.Boot.Acpi;

/// <summary>
/// The Differentiated System Description Table: the S5 sleep package (so the guest can power off), COM1, the CMOS RTC, and one
/// "LNRO0005" device per virtio-mmio transport, which is how kernels without virtio_mmio.device= find them.
/// </summary>
internal static class Dsdt
{
    public const byte Revision = 2; // 64-bit AML integers

    /// <summary>Most virtio devices: their names run V000..V999.</summary>
    public const int MaxVirtioDevices = 1000;

    internal const string VirtioMmioHid = "LNRO0005";
    internal const string SerialHid = "PNP0501"; // 16550A-compatible UART
    internal const ushort Com1Port = 0x3F8;
    internal const byte Com1Ports = 8;
    internal const uint Com1Irq = 4;
    internal const string RtcHid = "PNP0B00"; // AT-compatible CMOS real-time clock
    internal const ushort RtcPort = 0x70;

    public static byte[] Build(IReadOnlyList<VirtioMmioWindow> virtioDevices)
    {
        var aml = new AmlWriter();

        WriteS5(aml, AcpiPorts.S5SleepType);

        aml.BeginScope("\\_SB_");
        WriteCom1(aml);
        WriteRtc(aml);
        for (int i = 0; i < virtioDevices.Count; i++)
            WriteVirtioDevice(aml, i, virtioDevices[i]);
        aml.End();
        return Seal(aml);
    }

    /// <summary>\_S5_: SLP_TYPa, SLP_TYPb and two reserved values; the VMM reads SLP_TYPa only.</summary>
    internal static void WriteS5(AmlWriter aml, byte sleepType)
    {
        aml.Name("_S5_");
        aml.BeginPackage(4);
        aml.Integer(sleepType);
        aml.Integer(0);
        aml.Integer(0);
        aml.Integer(0);
        aml.End();
    }

    /// <summary>The DSDT with <paramref name="aml"/>'s term list as its body.</summary>
    internal static byte[] Seal(AmlWriter aml)
    {
        byte[] body = aml.ToArray();
        var table = new byte[AcpiHeader.Size + body.Length];
        body.CopyTo(table.AsSpan(AcpiHeader.Size));
        AcpiHeader.WriteAndSeal(table, "DSDT", Revision, "STRVDSDT");
        return table;
    }

    // Described even when the VMM has no serial backend: the 8250 driver skips a port that does not answer.
    internal static void WriteCom1(AmlWriter aml)
    {
        aml.BeginDevice("COM1");
        aml.Name("_HID");
        aml.EisaId(SerialHid);
        aml.Name("_UID");
        aml.Integer(0);
        aml.Name("_CRS");
        aml.BeginResourceTemplate();
        aml.IoPort(Com1Port, Com1Port, 1, Com1Ports);
        aml.ExtendedInterrupt(Com1Irq, AmlTrigger.Edge, AmlPolarity.ActiveHigh, shared: false);
        aml.End();
        aml.End();
    }

    // Without it a hardware-reduced guest has no legacy IRQ map and rtc_cmos fails its probe; the RTC raises no
    // interrupt, so none is described and the driver runs without alarms.
    internal static void WriteRtc(AmlWriter aml)
    {
        aml.BeginDevice("RTC_");
        aml.Name("_HID");
        aml.EisaId(RtcHid);
        aml.Name("_CRS");
        aml.BeginResourceTemplate();
        aml.IoPort(RtcPort, RtcPort, 1, 2);
        aml.End();
        aml.End();
    }

    private static void WriteVirtioDevice(AmlWriter aml, int index, VirtioMmioWindow device)
    {
        aml.BeginDevice($"V{index:D3}");
        aml.Name("_HID");
        aml.String(VirtioMmioHid);
        aml.Name("_UID");
        aml.Integer((ulong)index);
        aml.Name("_CRS");
        aml.BeginResourceTemplate();
        aml.Memory32Fixed(writable: true, (uint)device.Base, device.Size);
        // Edge: the VMM pulses the GSI (irqfd / KVM_IRQ_LINE 1 then 0) and never holds it until the ISR is read.
        aml.ExtendedInterrupt(device.Irq, AmlTrigger.Edge, AmlPolarity.ActiveHigh, shared: false);
        aml.End();
        aml.End();
    }
}
