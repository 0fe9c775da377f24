namespace StratoVirt.Boot.Acpi;

/// <summary>
/// The I/O ports of the hardware-reduced ACPI power-management registers that the FADT advertises and the VMM
/// emulates, with the bit layout needed to decode guest writes.
/// </summary>
public static class AcpiPorts
{
    /// <summary>Sleep control register (8 bits): the guest writes SLP_TYP and SLP_EN here to power off.</summary>
    public const ushort SleepControl = 0x600;

    /// <summary>Sleep status register (8 bits): the guest writes WAK_STS to clear it before sleeping; reads as 0.</summary>
    public const ushort SleepStatus = 0x601;

    /// <summary>Reset register (8 bits): writing <see cref="ResetValue"/> resets the machine.</summary>
    public const ushort Reset = 0x602;

    /// <summary>The value the FADT tells the guest to write to <see cref="Reset"/>.</summary>
    public const byte ResetValue = 0x42;

    /// <summary>SLP_EN, bit 5 of the sleep control register: enter the state in SLP_TYP.</summary>
    public const byte SleepEnable = 1 << 5;

    /// <summary>SLP_TYP occupies bits 4:2 of the sleep control register.</summary>
    public const int SleepTypeShift = 2;

    /// <summary>Mask of SLP_TYP within the sleep control register.</summary>
    public const byte SleepTypeMask = 0b111 << SleepTypeShift;

    /// <summary>SLP_TYP value of S5 (soft off), the first element of the DSDT's <c>\_S5_</c> package.</summary>
    public const byte S5SleepType = 5;

    /// <summary>WAK_STS, bit 7 of the sleep status register.</summary>
    public const byte WakeStatus = 1 << 7;

    /// <summary>SLP_TYP carried by a sleep control write.</summary>
    public static int SleepType(byte sleepControl) => (sleepControl & SleepTypeMask) >> SleepTypeShift;

    /// <summary>True when a sleep control write asks for S5, i.e. power off.</summary>
    public static bool IsPowerOff(byte sleepControl) =>
        (sleepControl & SleepEnable) != 0 && SleepType(sleepControl) == S5SleepType;
}
