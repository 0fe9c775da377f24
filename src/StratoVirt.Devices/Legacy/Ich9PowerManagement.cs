using System.Buffers.Binary;
using System.Diagnostics;
using StratoVirt.Memory;

namespace StratoVirt.Devices.Legacy;

/// <summary>
/// The ICH9's fixed ACPI registers at PMBASE (register the object there with <see cref="Length"/>): PM1 status
/// (write 1 to clear) and enable at +0, PM1 control at +4 (SCI_EN always set: there is no legacy mode to leave;
/// SLP_EN with SLP_TYP <see cref="S5SleepType"/> powers off), and the 3.579545 MHz PM timer at +8, 32 bits wide.
/// The one fixed event is the power button (<see cref="PressPowerButton"/>): PWRBTN_STS, and the SCI held as a
/// level on <paramref name="sci"/> while a status bit is set whose enable bit is set too.
/// Threading: any vCPU may access it, the main loop presses the button and resets it; one lock guards the
/// registers, and the SCI's level and the power-off callback are applied after it.
/// </summary>
public sealed class Ich9PowerManagement(Action powerOff, IInterruptLine? sci = null, Func<long>? timestamp = null) : IBusDevice
{
    public const ushort DefaultBase = 0x600;
    public const ulong Length = 12;
    public const int Pm1EventLength = 4, Pm1ControlLength = 2, TimerLength = 4;
    public const ulong TimerFrequency = 3_579_545;

    /// <summary>SLP_TYP the DSDT's \_S5_ package hands the guest for soft-off.</summary>
    public const byte S5SleepType = 5;

    private const int StatusOffset = 0, EnableOffset = 2, ControlOffset = 4, TimerOffset = 8;
    private const ushort SciEnable = 1, SleepEnable = 1 << 13, SleepTypeMask = 0b111 << 10;
    // TMR_STS, BM_STS, GBL_STS, PWRBTN_STS, SLPBTN_STS, RTC_STS, WAK_STS
    private const ushort StatusBits = 0x8F31;
    private const ushort EnableBits = 0x0521; // TMR_EN, GBL_EN, PWRBTN_EN, RTC_EN
    private const ushort PowerButton = 1 << 8; // PWRBTN_STS and PWRBTN_EN

    private readonly Func<long> _timestamp = timestamp ?? Stopwatch.GetTimestamp;
    private readonly long _start = (timestamp ?? Stopwatch.GetTimestamp)();
    private readonly Lock _gate = new();
    private readonly Lock _sciGate = new(); // keeps the line's level changes in the order the registers changed
    private ushort _status, _enable, _control = SciEnable;

    public void Read(ulong offset, Span<byte> data)
    {
        Span<byte> registers = stackalloc byte[(int)Length];
        lock (_gate)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(registers[StatusOffset..], _status);
            BinaryPrimitives.WriteUInt16LittleEndian(registers[EnableOffset..], _enable);
            BinaryPrimitives.WriteUInt16LittleEndian(registers[ControlOffset..], _control);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(registers[TimerOffset..], TimerTicks());
        if (offset + (ulong)data.Length > Length) data.Fill(0xFF);
        else registers.Slice((int)offset, data.Length).CopyTo(data);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset + (ulong)data.Length > Length) return;
        Span<byte> bytes = stackalloc byte[(int)Length];
        bytes.Clear();
        data.CopyTo(bytes[(int)offset..]);
        ushort status = BinaryPrimitives.ReadUInt16LittleEndian(bytes[StatusOffset..]);
        ushort enable = BinaryPrimitives.ReadUInt16LittleEndian(bytes[EnableOffset..]);
        ushort control = BinaryPrimitives.ReadUInt16LittleEndian(bytes[ControlOffset..]);
        ushort enableMask = (ushort)(ByteMask(EnableOffset, offset, data.Length) & EnableBits);
        ushort controlMask = ByteMask(ControlOffset, offset, data.Length);
        bool off;
        lock (_sciGate)
        {
            lock (_gate)
            {
                _status &= (ushort)~(status & StatusBits); // bytes not written are zero: they clear nothing
                _enable = Merge(_enable, enable, enableMask);
                _control = (ushort)(Merge(_control, control, (ushort)(controlMask & SleepTypeMask)) | SciEnable);
                off = (control & controlMask & SleepEnable) != 0 && ((_control & SleepTypeMask) >> 10) == S5SleepType;
            }
            UpdateSci();
        }
        if (off) powerOff();
    }

    /// <summary>The power button is pressed (QMP system_powerdown): PWRBTN_STS is set, which raises the SCI once
    /// the guest has enabled the event; the guest's ACPI driver clears it.</summary>
    public void PressPowerButton()
    {
        lock (_sciGate)
        {
            lock (_gate) _status |= PowerButton;
            UpdateSci();
        }
    }

    /// <summary>The power-on state (a machine reset): no status, no enables, SLP_TYP 0, the SCI low. The PM timer
    /// runs on, as the ICH9's does across a CPU reset.</summary>
    public void Reset()
    {
        lock (_sciGate)
        {
            lock (_gate) (_status, _enable, _control) = (0, 0, SciEnable);
            UpdateSci();
        }
    }

    /// <summary>Whether the SCI is asserted: an event's status and enable bits are both set.</summary>
    public bool SciAsserted
    {
        get { lock (_gate) return (_status & _enable & EnableBits) != 0; }
    }

    private bool _sciLevel;

    /// <summary>Drives the SCI to the registers' level (under <c>_sciGate</c>).</summary>
    private void UpdateSci()
    {
        bool level = SciAsserted;
        if (sci is null || level == _sciLevel) return;
        _sciLevel = level;
        sci.SetLevel(level);
    }

    private uint TimerTicks()
    {
        long elapsed = _timestamp() - _start;
        return (uint)((UInt128)(ulong)elapsed * TimerFrequency / (ulong)Stopwatch.Frequency);
    }

    private static ushort Merge(ushort old, ushort value, ushort mask) => (ushort)((old & ~mask) | (value & mask));

    /// <summary>Which bits of the 16-bit register at <paramref name="register"/> a write of
    /// <paramref name="length"/> bytes at <paramref name="offset"/> covers.</summary>
    private static ushort ByteMask(int register, ulong offset, int length)
    {
        ushort mask = 0;
        for (int i = 0; i < 2; i++)
            if (register + i >= (int)offset && register + i < (int)offset + length) mask |= (ushort)(0xFF << (8 * i));
        return mask;
    }
}
