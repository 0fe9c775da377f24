using StratoVirt.Boot;
using StratoVirt.Boot.Acpi;
using StratoVirt.Memory;

namespace StratoVirt.Machine;

/// <summary>The ACPI sleep control and reset registers the FADT points at: S5 powers off, reset ends the VM.</summary>
public sealed class AcpiPowerPorts(Action<MachineExit> requestExit) : IBusDevice
{
    public const ulong Base = AcpiPorts.SleepControl;
    public const ulong Length = 3;

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        ulong port = Base + offset;
        byte value = data[0];
        if (port == AcpiPorts.SleepControl && AcpiPorts.IsPowerOff(value))
            requestExit(MachineExit.GuestPowerOff("guest powered off (ACPI S5)"));
        else if (port == AcpiPorts.Reset && value == AcpiPorts.ResetValue)
            requestExit(MachineExit.GuestReset("guest requested a reset (ACPI)"));
    }
}
