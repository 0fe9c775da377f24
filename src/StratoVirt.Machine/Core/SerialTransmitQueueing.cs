using StratoVirt.Devices.Legacy;
using StratoVirt.Kvm;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>
/// Queues the guest's writes to the serial port's transmit register (COM1's THR, the PL011's DR) in KVM's coalesced
/// ring while its console polls the UART's status before every byte, which halves the exits of a kernel's console
/// output: the write no longer exits, only the poll does, and the vCPU drains the ring before serving the poll.
/// </summary>
/// <remarks>
/// The coalesced zone is added on a status poll, while the UART allows queueing
/// (<see cref="IQueueableTransmit.TransmitMayBeQueued"/>: no transmit interrupt, no loopback). It goes again, on the
/// vCPU whose register write asked for it, as soon as the UART no longer allows queueing, and from the main loop
/// once a whole tick has passed without a poll, which then drains the ring: a guest that writes without polling
/// (a payload, a firmware's last byte) gets its bytes out within two ticks, and an idle guest costs no timer.
/// </remarks>
internal sealed class SerialTransmitQueueing
{
    /// <summary>How long the zone stays without a poll before the main loop removes it and drains the ring.</summary>
    public const int TickMs = 20;

    private readonly IQueueableTransmit _uart;
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
    public SerialTransmitQueueing(IQueueableTransmit uart, Action<bool> setZone, CoalescedRing ring, CoalescedWriteHandler write,
        Action wakeMainLoop, Action<string> vmFailed, Func<long>? clock = null)
    {
        _uart = uart;
        _setZone = setZone;
        _ring = ring;
        _write = write;
        _wakeMainLoop = wakeMainLoop;
        _vmFailed = vmFailed;
        _clock = clock ?? (() => Environment.TickCount64);
        uart.StatusPolled = OnStatusPolled;
        uart.TransmitQueueingChanged += OnQueueingChanged;
    }

    /// <summary>
    /// Lets KVM queue the writes to <paramref name="uart"/>'s transmit register at <paramref name="address"/>
    /// (<paramref name="length"/> bytes; a port with <paramref name="pio"/>) where the host's KVM has coalesced zones
    /// of that kind; the vCPUs drain the ring and the machine's main loop runs the tick. After the vCPUs are created:
    /// the ring is mapped through one.
    /// </summary>
    public static void Enable(VirtualMachine vm, KvmSystem kvm, KvmVm kvmVm, IQueueableTransmit? uart, ulong address,
        uint length, bool pio)
    {
        if (uart is null || vm.Vcpus.Count == 0) return;
        int page = kvm.CheckExtension(KvmCap.CoalescedMmio);
        if (page <= 0 || (pio && kvm.CheckExtension(KvmCap.CoalescedPio) == 0))
        {
            Log.Debug("KVM lacks coalesced zones for the serial port; every write to it exits");
            return;
        }
        var ring = vm.Own(((KvmVcpu)vm.Vcpus[0].Handle).MapCoalescedRing(page));
        foreach (var vcpu in vm.Vcpus) vcpu.QueuedWrites = ring;
        vm.SerialQueueing = new SerialTransmitQueueing(uart,
            on =>
            {
                if (on) kvmVm.RegisterCoalesced(address, length, pio);
                else kvmVm.UnregisterCoalesced(address, length, pio);
            },
            ring, (at, isPio, data) => WriteDrained(vm, at, isPio, data), vm.MainLoop.Wake, vm.VmFailed);
    }

    /// <summary>A write the main loop drained from the ring: only the transmit register is ever queued.</summary>
    private static void WriteDrained(VirtualMachine vm, ulong address, bool pio, ReadOnlySpan<byte> data)
    {
        try { (pio ? vm.Pio : vm.Mmio).Write(address, data); }
        catch (Exception e) { Log.Warn($"serial port: a queued write to 0x{address:x} failed: {e.Message}"); }
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

    /// <summary>A vCPU read the UART's status: add the zone if the UART allows it.</summary>
    private void OnStatusPolled()
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

    /// <summary>The UART's interrupt enables or loopback changed (a vCPU, or a reset or restore on the main loop): once it no longer
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
