using StratoVirt.Devices.Legacy;
using StratoVirt.Kvm;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>
/// Queues the guest's writes to COM1's transmit register in KVM's coalesced ring while its console polls the line
/// status before every byte, which halves the exits of a kernel's console output: the write no longer exits, only
/// the poll does, and the vCPU drains the ring before serving the poll.
/// </summary>
/// <remarks>
/// The coalesced port zone is added on a line status poll, while the UART allows queueing
/// (<see cref="Serial16550.TransmitMayBeQueued"/>: no THR-empty interrupt, no loopback). It goes again, on the
/// vCPU whose register write asked for it, as soon as the UART no longer allows queueing, and from the main loop
/// once a whole tick has passed without a poll, which then drains the ring: a guest that writes without polling
/// (a payload, a firmware's last byte) gets its bytes out within two ticks, and an idle guest costs no timer.
/// </remarks>
internal sealed class SerialTransmitQueueing
{
    /// <summary>How long the zone stays without a poll before the main loop removes it and drains the ring.</summary>
    public const int TickMs = 20;

    private readonly Serial16550 _uart;
    private readonly Action<bool> _setZone;
    private readonly CoalescedRing _ring;
    private readonly CoalescedWriteHandler _write;
    private readonly Action _wakeMainLoop;
    private readonly Action<string> _vmFailed;
    private readonly Func<long> _clock;
    private readonly Lock _gate = new();
    private volatile bool _zone;
    private int _polled;
    private bool _refused;
    private long _nextTick;
    private int _zonesAdded;

    /// <param name="setZone">Adds (true) or removes (false) the coalesced zone on the transmit register.</param>
    /// <param name="write">Serves a write taken from the ring (the port bus), for the drain after removal.</param>
    /// <param name="clock">Milliseconds, monotonic (tests give their own).</param>
    public SerialTransmitQueueing(Serial16550 uart, Action<bool> setZone, CoalescedRing ring, CoalescedWriteHandler write,
        Action wakeMainLoop, Action<string> vmFailed, Func<long>? clock = null)
    {
        _uart = uart;
        _setZone = setZone;
        _ring = ring;
        _write = write;
        _wakeMainLoop = wakeMainLoop;
        _vmFailed = vmFailed;
        _clock = clock ?? (() => Environment.TickCount64);
        uart.LineStatusPolled = OnLineStatusPolled;
        uart.TransmitQueueingChanged += OnQueueingChanged;
    }

    /// <summary>Whether the zone is in place (KVM queues the transmit writes).</summary>
    public bool Queueing => _zone;

    /// <summary>How long the main loop may wait before <see cref="Tick"/> is due: -1 (forever) without the zone.</summary>
    public int TimeoutMs
    {
        get
        {
            lock (_gate) return _zone ? (int)Math.Clamp(_nextTick - _clock(), 0, TickMs) : -1;
        }
    }

    /// <summary>A vCPU read the line status: add the zone if the UART allows it.</summary>
    private void OnLineStatusPolled()
    {
        Volatile.Write(ref _polled, 1);
        if (_zone) return; // the common case while a console prints: no lock
        lock (_gate)
        {
            if (_zone || _refused || !_uart.TransmitMayBeQueued) return;
            try
            {
                _setZone(true);
            }
            catch (SysException e)
            {
                // Without the zone every write exits, which is only slower.
                _refused = true;
                Log.Warn($"serial port: {e.Message}; its writes exit one by one");
                return;
            }
            _zone = true;
            _zonesAdded++;
            _nextTick = _clock() + TickMs;
        }
        _wakeMainLoop(); // it waits without a timeout until now
    }

    /// <summary>The UART's IER or MCR changed (a vCPU, or a reset or restore on the main loop): once it no longer
    /// allows queueing, the zone goes before the access that changed it completes.</summary>
    private void OnQueueingChanged()
    {
        lock (_gate)
        {
            if (_zone && !_uart.TransmitMayBeQueued) RemoveZone();
        }
    }

    /// <summary>The main loop's tick: keeps the zone while polls come, else removes it and drains the ring.</summary>
    public void Tick()
    {
        lock (_gate)
        {
            if (!_zone || _clock() < _nextTick) return;
            if (Interlocked.Exchange(ref _polled, 0) != 0)
            {
                _nextTick = _clock() + TickMs;
                return;
            }
            RemoveZone();
        }
        // No write is queued after the zone went, so this drain leaves the ring empty until the next poll.
        _ring.Drain(_write);
    }

    /// <summary>The VM is ending and its vCPUs have stopped: serves what is still queued and logs how much was.</summary>
    public void Finish()
    {
        _ring.Drain(_write);
        Log.Info($"serial port: {_ring.Taken} transmit writes queued by KVM instead of exiting (zone added {_zonesAdded} times)");
    }

    private void RemoveZone()
    {
        try
        {
            _setZone(false);
            _zone = false;
        }
        catch (SysException e)
        {
            // The guest would wait for interrupts that its queued writes never raise.
            _vmFailed($"serial port: {e.Message}");
        }
    }
}
