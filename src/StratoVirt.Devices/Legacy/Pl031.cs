using StratoVirt.Memory;

namespace StratoVirt.Devices.Legacy;

/// <summary>
/// The Arm PL031 real-time clock (PrimeCell, 4 KiB of MMIO): a 32-bit count of seconds since the Unix epoch,
/// the host's UTC clock plus an offset the guest sets by loading the counter, and a match (alarm) interrupt.
/// </summary>
/// <remarks>
/// The match is checked on every register access: the raw interrupt latches once the counter has reached the
/// match value since the match or load register was last written. Nothing checks it between
/// accesses; a host timer for an alarm that no access observes is the machine's to add. The line is a level:
/// the raw status while unmasked. The counter always runs (CR reads 1). Threading: any vCPU thread may access it;
/// one lock guards the state and the interrupt line is set under it.
/// </remarks>
public sealed class Pl031 : IBusDevice
{
    private const ulong Dr = 0x00, Mr = 0x04, Lr = 0x08, Cr = 0x0C, Imsc = 0x10, Ris = 0x14, Mis = 0x18, Icr = 0x1C;
    private const uint PeripheralId = 0x0004_1031; // part 0x031, designer Arm (0x41), revision 0

    private readonly Lock _gate = new();
    private readonly IInterruptLine _irq;
    private readonly Func<DateTime> _clock;
    private long _offset;   // guest seconds minus host seconds
    private uint _match;
    private bool _armed;    // the match has not been reached since MR or LR was written
    private uint _armedAt;  // the counter then
    private bool _raw, _unmasked, _irqLevel;

    /// <summary>Creates the clock on <paramref name="irq"/>; <paramref name="utcClock"/> (default
    /// <see cref="DateTime.UtcNow"/>) is for tests.</summary>
    public Pl031(IInterruptLine irq, Func<DateTime>? utcClock = null)
    {
        ArgumentNullException.ThrowIfNull(irq);
        _irq = irq;
        _clock = utcClock ?? DefaultClock;
    }

    /// <inheritdoc />
    public void Read(ulong offset, Span<byte> data)
    {
        uint value;
        lock (_gate)
        {
            CheckMatch();
            value = (offset & ~3UL) switch
            {
                Dr => Counter,
                Mr => _match,
                Lr => Counter, // reads back the running value, not the one loaded
                Cr => 1,
                Imsc => _unmasked ? 1u : 0,
                Ris => _raw ? 1u : 0,
                Mis => _raw && _unmasked ? 1u : 0,
                var r => PrimeCell.TryReadId(r, PeripheralId, out uint id) ? id : 0,
            };
            UpdateIrq();
        }
        PrimeCell.Fill(value, offset, data);
    }

    /// <inheritdoc />
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if ((offset & 3) != 0 || data.IsEmpty) return; // registers take aligned accesses only
        uint value = PrimeCell.Value(data);
        lock (_gate)
        {
            switch (offset)
            {
                case Mr:
                    _match = value;
                    Arm();
                    break;
                case Lr:
                    _offset = value - HostSeconds;
                    Arm();
                    break;
                case Imsc:
                    _unmasked = (value & 1) != 0;
                    break;
                case Icr:
                    if ((value & 1) != 0) _raw = false;
                    break;
            }
            CheckMatch();
            UpdateIrq();
        }
    }

    private static DateTime DefaultClock() => DateTime.UtcNow;

    private long HostSeconds => (long)(_clock() - DateTime.UnixEpoch).TotalSeconds;

    /// <summary>The guest's counter: 32 bits, wrapping in 2106 as the hardware's does.</summary>
    private uint Counter => (uint)(HostSeconds + _offset);

    private void Arm()
    {
        _armed = true;
        _armedAt = Counter;
    }

    /// <summary>Latches the interrupt if the counter has passed the match value since it was armed (as the
    /// hardware's "counter equals match" would have at some second in between). A match in the past stays quiet.</summary>
    private void CheckMatch()
    {
        if (!_armed || _match - _armedAt > Counter - _armedAt) return;
        _armed = false;
        _raw = true;
    }

    private void UpdateIrq()
    {
        bool level = _raw && _unmasked;
        if (level == _irqLevel) return;
        _irqLevel = level;
        _irq.SetLevel(level);
    }
}
