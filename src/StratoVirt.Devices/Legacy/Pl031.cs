namespace StratoVirt.Devices.Legacy;

/// <summary>
/// The Arm PL031 real-time clock (PrimeCell, 4 KiB of MMIO): a 32-bit count of seconds since the Unix epoch,
/// the host's UTC clock plus an offset the guest sets by loading the counter, and a match (alarm) interrupt.
/// </summary>
/// <remarks>
/// The match is checked on every register access: the raw interrupt latches once the counter has reached the
/// match value since the match or load register was last written. Nothing checks it between
/// accesses; a host timer for an alarm that no access observes is the machine's to add. The line is a level:
/// the raw status while unmasked. The counter always runs (CR reads 1). Threading: see <see cref="PrimeCell"/>.
/// </remarks>
public sealed class Pl031 : PrimeCell
{
    private const ulong Dr = 0x00, Mr = 0x04, Lr = 0x08, Cr = 0x0C, Imsc = 0x10, Ris = 0x14, Mis = 0x18, Icr = 0x1C;
    private const uint PeripheralId = 0x0004_1031; // part 0x031, designer Arm (0x41), revision 0

    private readonly Func<DateTime> _clock;
    private long _offset;   // guest seconds minus host seconds
    private uint _match;
    private bool _armed;    // the match has not been reached since MR or LR was written
    private uint _armedAt;  // the counter then
    private bool _raw, _unmasked;

    /// <summary>Creates the clock on <paramref name="irq"/>; <paramref name="utcClock"/> (default
    /// <see cref="DateTime.UtcNow"/>) is for tests.</summary>
    public Pl031(IInterruptLine irq, Func<DateTime>? utcClock = null) : base(irq, PeripheralId) =>
        _clock = utcClock ?? DefaultClock;

    /// <inheritdoc />
    protected override bool InterruptAsserted => _raw && _unmasked;

    /// <inheritdoc />
    protected override uint ReadRegister(ulong register)
    {
        CheckMatch();
        return register switch
        {
            Dr => Counter,
            Mr => _match,
            Lr => Counter, // reads back the running value, not the one loaded
            Cr => 1,
            Imsc => _unmasked ? 1u : 0,
            Ris => _raw ? 1u : 0,
            Mis => _raw && _unmasked ? 1u : 0,
            _ => 0,
        };
    }

    /// <inheritdoc />
    protected override void WriteRegister(ulong register, uint value)
    {
        switch (register)
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
}
