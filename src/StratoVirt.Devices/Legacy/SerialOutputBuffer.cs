namespace StratoVirt.Devices.Legacy;

/// <summary>
/// Collects what a UART transmits and hands it to the host (its chardev) in batches from the event loop, instead of
/// one write (and for stdout one poll) per byte on the vCPU that transmitted it. A console prints a byte per
/// register write, so a kernel's boot log costs the vCPU two system calls per byte without this.
/// </summary>
/// <remarks>
/// Until <see cref="Start"/> every byte goes straight to the sink. After it, the first byte into an empty buffer sets
/// a deadline <see cref="FlushDelayMs"/> ahead and wakes the loop, which waits at most <see cref="TimeoutMs"/> and
/// then calls <see cref="FlushIfDue"/>: at most one wake-up per batch. A transmit that does not fit in the buffer is
/// written on the transmitting thread, after what was buffered. The sink is called by one thread at a time and
/// sees the bytes in the order they were transmitted. <see cref="Flush"/> empties the buffer at once (the VM's end).
/// </remarks>
public sealed class SerialOutputBuffer : ISerialOutput
{
    /// <summary>How long a byte may wait for the loop: short for a human at a console, long next to the rate at
    /// which a guest's console loop writes.</summary>
    public const int FlushDelayMs = 10;

    /// <summary>Bytes the buffer holds; a guest that transmits more within one delay writes the rest itself.</summary>
    public const int Capacity = 4096;

    private readonly ISerialOutput _sink;
    private readonly Func<long> _clock;
    private readonly Lock _gate = new();      // the buffer, its length and deadline
    private readonly Lock _sinkGate = new();  // one sink call at a time, in order; taken before _gate
    private byte[] _buffer = new byte[Capacity];
    private byte[] _taken = new byte[Capacity];
    private int _length;
    private long _due;
    private Action? _wake;

    /// <param name="sink">Where the batches go (the port's chardev).</param>
    /// <param name="clock">Milliseconds, monotonic (tests give their own).</param>
    public SerialOutputBuffer(ISerialOutput sink, Func<long>? clock = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        _sink = sink;
        _clock = clock ?? (() => Environment.TickCount64);
    }

    /// <summary>Starts batching; <paramref name="wakeLoop"/> makes the loop that calls <see cref="FlushIfDue"/> look at
    /// <see cref="TimeoutMs"/> again.</summary>
    public void Start(Action wakeLoop)
    {
        ArgumentNullException.ThrowIfNull(wakeLoop);
        lock (_gate) _wake = wakeLoop;
    }

    /// <summary>How long the loop may wait before <see cref="FlushIfDue"/> is due: -1 (forever) while nothing is
    /// buffered.</summary>
    public int TimeoutMs
    {
        get
        {
            lock (_gate) return _length == 0 ? -1 : (int)Math.Clamp(_due - _clock(), 0, FlushDelayMs);
        }
    }

    /// <summary>Takes transmitted bytes (the UART, one call at a time).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        if (TryBuffer(data, out var wakeLoop))
        {
            wakeLoop?.Invoke(); // the first bytes of a batch
            return;
        }
        // Not started, or the buffer is full: what it holds goes first, then this, from this thread.
        lock (_sinkGate)
        {
            WriteBuffered();
            _sink.Write(data);
        }
    }

    /// <summary>Appends <paramref name="data"/> if batching has started and it fits; <paramref name="wakeLoop"/> is
    /// set when it starts a batch.</summary>
    private bool TryBuffer(ReadOnlySpan<byte> data, out Action? wakeLoop)
    {
        lock (_gate)
        {
            wakeLoop = null;
            if (_wake is null || _length + data.Length > Capacity) return false;
            if (_length == 0)
            {
                _due = _clock() + FlushDelayMs;
                wakeLoop = _wake;
            }
            data.CopyTo(_buffer.AsSpan(_length));
            _length += data.Length;
            return true;
        }
    }

    /// <summary>Hands the buffered bytes to the sink if their deadline has passed (the loop, after each wait).</summary>
    public void FlushIfDue()
    {
        lock (_gate)
        {
            if (_length == 0 || _clock() < _due) return;
        }
        Flush();
    }

    /// <summary>Hands whatever is buffered to the sink now.</summary>
    public void Flush()
    {
        lock (_sinkGate) WriteBuffered();
    }

    /// <summary>Swaps the buffer for the empty one and writes what it held. Under <see cref="_sinkGate"/>, so that
    /// the taken buffer is not swapped back while it is written.</summary>
    private void WriteBuffered()
    {
        int length;
        lock (_gate)
        {
            length = _length;
            if (length == 0) return;
            (_buffer, _taken) = (_taken, _buffer);
            _length = 0;
        }
        _sink.Write(_taken.AsSpan(0, length));
    }
}
