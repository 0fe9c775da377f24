using System.Buffers.Binary;

namespace StratoVirt.Boot.Acpi;

/// <summary>
/// The Fixed ACPI Description Table ("FACP") of a hardware-reduced ACPI 6.3 platform: no fixed PM hardware, no
/// SCI, no FACS; power off and reset go through the I/O ports in <see cref="AcpiPorts"/>.
/// </summary>
internal static class Fadt
{
    public const int Size = 276;
    public const byte Revision = 6;
    public const byte MinorRevision = 3; // ACPI 6.3

    internal const int SciInterruptOffset = 46;
    internal const int BootArchitectureOffset = 109;
    internal const int FlagsOffset = 112;
    internal const int ResetRegisterOffset = 116;
    internal const int ResetValueOffset = 128;
    internal const int MinorRevisionOffset = 131;
    internal const int XDsdtOffset = 140;
    internal const int SleepControlOffset = 244;
    internal const int SleepStatusOffset = 256;
    internal const int HypervisorVendorOffset = 268;

    // IAPC_BOOT_ARCH: legacy ISA devices (COM1, RTC) and an i8042 (used for reboot) exist; no VGA. The CMOS RTC is
    // emulated, so "CMOS RTC not present" (bit 5) stays clear.
    internal const ushort LegacyDevices = 1 << 0;
    internal const ushort Has8042 = 1 << 1;
    internal const ushort VgaNotPresent = 1 << 2;

    internal const uint FlagWbinvd = 1 << 0;
    internal const uint FlagProcC1 = 1 << 2;
    internal const uint FlagResetRegisterSupported = 1 << 10;
    internal const uint FlagHardwareReduced = 1 << 20;

    // Linux skips SCI setup on hardware-reduced platforms; 9 rather than 0 so no SCI path can ever claim IRQ0 (PIT).
    internal const ushort SciInterrupt = 9;

    private const byte SystemIoSpace = 1;
    private const byte ByteAccess = 1;

    public static byte[] Build(ulong dsdtAddress)
    {
        var table = new byte[Size];
        var t = table.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(t[SciInterruptOffset..], SciInterrupt);
        BinaryPrimitives.WriteUInt16LittleEndian(t[BootArchitectureOffset..], LegacyDevices | Has8042 | VgaNotPresent);
        BinaryPrimitives.WriteUInt32LittleEndian(t[FlagsOffset..],
            FlagWbinvd | FlagProcC1 | FlagResetRegisterSupported | FlagHardwareReduced);
        WriteIoRegister(t[ResetRegisterOffset..], AcpiPorts.Reset);
        t[ResetValueOffset] = AcpiPorts.ResetValue;
        t[MinorRevisionOffset] = MinorRevision;
        // The 32-bit DSDT field must be zero when X_DSDT is used.
        BinaryPrimitives.WriteUInt64LittleEndian(t[XDsdtOffset..], dsdtAddress);
        WriteIoRegister(t[SleepControlOffset..], AcpiPorts.SleepControl);
        WriteIoRegister(t[SleepStatusOffset..], AcpiPorts.SleepStatus);
        var w = new ByteWriter(t[HypervisorVendorOffset..]);
        w.Ascii("STRVRTVM", 8);
        AcpiHeader.WriteAndSeal(t, "FACP", Revision, "STRVFACP");
        return table;
    }

    internal const int FacsOffset = 36, Pm1aEventOffset = 56, Pm1aControlOffset = 64, PmTimerOffset = 76;
    internal const int Pm1EventLengthOffset = 88, Pm1ControlLengthOffset = 89, PmTimerLengthOffset = 91;
    internal const int C2LatencyOffset = 96, C3LatencyOffset = 98;
    internal const int XFacsOffset = 132, XPm1aEventOffset = 148, XPm1aControlOffset = 172, XPmTimerOffset = 208;
    internal const uint FlagPowerButtonDevice = 1 << 4; // no fixed power button
    internal const uint FlagSleepButtonDevice = 1 << 5; // no fixed sleep button
    internal const uint FlagTimerValueExtended = 1 << 8; // the PM timer counts 32 bits
    private const ushort NoCState = 0x0FFF; // latencies above 100/1000 us: C2 and C3 unsupported

    /// <summary>The FADT of a PC with fixed ACPI hardware (the q35's ICH9): PM1a event and control blocks, the
    /// PM timer, a FACS, SCI <paramref name="sciIrq"/>, a reset register and the fixed power button; no SMI
    /// command port, as the platform starts in ACPI mode (SCI_EN set).</summary>
    public static byte[] BuildFixedHardware(ulong dsdtAddress, ulong facsAddress, FixedAcpiPorts ports, ushort sciIrq)
    {
        var table = new byte[Size];
        var t = table.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(t[FacsOffset..], checked((uint)facsAddress));
        BinaryPrimitives.WriteUInt16LittleEndian(t[SciInterruptOffset..], sciIrq);
        BinaryPrimitives.WriteUInt32LittleEndian(t[Pm1aEventOffset..], ports.Pm1Event);
        BinaryPrimitives.WriteUInt32LittleEndian(t[Pm1aControlOffset..], ports.Pm1Control);
        BinaryPrimitives.WriteUInt32LittleEndian(t[PmTimerOffset..], ports.PmTimer);
        t[Pm1EventLengthOffset] = 4;
        t[Pm1ControlLengthOffset] = 2;
        t[PmTimerLengthOffset] = 4;
        BinaryPrimitives.WriteUInt16LittleEndian(t[C2LatencyOffset..], NoCState);
        BinaryPrimitives.WriteUInt16LittleEndian(t[C3LatencyOffset..], NoCState);
        BinaryPrimitives.WriteUInt16LittleEndian(t[BootArchitectureOffset..], LegacyDevices | Has8042 | VgaNotPresent);
        // PWR_BUTTON clear: the power button is the fixed-feature one (PM1 PWRBTN_STS/EN, on the SCI).
        BinaryPrimitives.WriteUInt32LittleEndian(t[FlagsOffset..], FlagWbinvd | FlagProcC1
            | FlagSleepButtonDevice | FlagTimerValueExtended | FlagResetRegisterSupported);
        WriteIoRegister(t[ResetRegisterOffset..], ports.Reset);
        t[ResetValueOffset] = ports.ResetValue;
        t[MinorRevisionOffset] = MinorRevision;
        BinaryPrimitives.WriteUInt64LittleEndian(t[XFacsOffset..], 0); // the 32-bit field is used
        BinaryPrimitives.WriteUInt64LittleEndian(t[XDsdtOffset..], dsdtAddress);
        WriteIoRegister(t[XPm1aEventOffset..], ports.Pm1Event, 32);
        WriteIoRegister(t[XPm1aControlOffset..], ports.Pm1Control, 16);
        WriteIoRegister(t[XPmTimerOffset..], ports.PmTimer, 32);
        var w = new ByteWriter(t[HypervisorVendorOffset..]);
        w.Ascii("STRVRTVM", 8);
        AcpiHeader.WriteAndSeal(t, "FACP", Revision, "STRVFACP");
        return table;
    }

    /// <summary>A Generic Address Structure naming one byte-wide I/O port.</summary>
    private static void WriteIoRegister(Span<byte> gas, ushort port, byte bits = 8)
    {
        var w = new ByteWriter(gas);
        w.U8(SystemIoSpace);
        w.U8(bits);
        w.U8(0); // bit offset
        w.U8(bits switch { 8 => ByteAccess, 16 => 2, _ => 3 }); // byte, word or dword access
        w.U64(port);
    }
}
