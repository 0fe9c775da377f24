namespace StratoVirt.Devices.Legacy;

/// <summary>
/// The Arm PL011 UART (PrimeCell, 4 KiB of MMIO): the aarch64 microVM's console, <c>ttyAMA0</c>. Transmitted
/// bytes leave at once, so the transmit FIFO is always empty; received bytes wait in a 16-byte FIFO (1 byte
/// while the guest has FIFOs off) filled by <see cref="EnqueueInput"/>.
/// </summary>
/// <remarks>
/// Interrupts: transmit is raised by every byte written (the FIFO drained at once) until cleared; receive when the
/// FIFO reaches the guest's trigger level; receive timeout as soon as the FIFO holds a byte (no character-time
/// delay is modelled), both dropping when reads empty the FIFO below them. The line is a level: any unmasked
/// raw status bit. Baud rate, line control, loopback and DMA registers are stored and have no effect.
/// Threading: register accesses come from vCPU threads and input from the main loop (see <see cref="PrimeCell"/>);
/// the output sink is called outside the state's lock, so a slow console never blocks input.
/// </remarks>
public sealed class Pl011 : PrimeCell, IUartReceiver, IQueueableTransmit
{
    /// <summary>Bytes the receive FIFO holds; input beyond this is refused, not dropped.</summary>
    public const int RxFifoCapacity = 16;

    private const ulong Dr = 0x000, RsrEcr = 0x004, Fr = 0x018, Ilpr = 0x020, Ibrd = 0x024, Fbrd = 0x028, LcrH = 0x02C;
    private const ulong Cr = 0x030, Ifls = 0x034, Imsc = 0x038, Ris = 0x03C, Mis = 0x040, Icr = 0x044, DmaCr = 0x048;

    private const uint FrRxEmpty = 1 << 4, FrRxFull = 1 << 6, FrTxEmpty = 1 << 7;
    private const uint IntRx = 1 << 4, IntTx = 1 << 5, IntRxTimeout = 1 << 6, IntMask = 0x7FF;
    private const uint LcrHFifoEnable = 1 << 4;
    private const uint ResetCr = 0x300, ResetIfls = 0x12; // TX and RX enabled; both FIFO levels at 1/2
    private const uint PeripheralId = 0x0014_1011;        // part 0x011, designer Arm (0x41), revision 1

    private readonly Lock _outputGate = new(); // keeps sink calls in order without holding _gate
    private readonly ISerialOutput _output;
    private readonly byte[] _rx = new byte[RxFifoCapacity];
    private int _rxHead, _rxCount;
    private bool _inputHeldOff, _resume; // input was refused; room is back and not yet reported
    private uint _ris, _imsc, _lcrH, _cr = ResetCr, _ifls = ResetIfls, _ilpr, _ibrd, _fbrd, _dmaCr;

    /// <summary>Creates a UART that raises <paramref name="irq"/> and transmits into <paramref name="output"/>.</summary>
    public Pl011(IInterruptLine irq, ISerialOutput output) : base(irq, PeripheralId)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
    }

    /// <summary>How many bytes <see cref="EnqueueInput"/> would accept right now.</summary>
    public int InputRoom
    {
        get
        {
            lock (Gate) return Depth - _rxCount;
        }
    }

    /// <summary>Raised, on the vCPU that freed the space, once the receive FIFO is at most half full (or was
    /// flushed) after <see cref="EnqueueInput"/> had to refuse bytes.</summary>
    public event Action? InputSpaceAvailable;

    /// <summary>Queues bytes the guest will receive and returns how many fit; the caller keeps the rest and retries
    /// after <see cref="InputSpaceAvailable"/>.</summary>
    public int EnqueueInput(ReadOnlySpan<byte> bytes)
    {
        int accepted;
        lock (Gate)
        {
            accepted = Math.Min(bytes.Length, Depth - _rxCount);
            if (accepted < bytes.Length) _inputHeldOff = true;
            for (int i = 0; i < accepted; i++) _rx[(_rxHead + _rxCount++) % RxFifoCapacity] = bytes[i];
            if (_rxCount > 0) _ris |= IntRxTimeout;
            if (_rxCount >= RxTriggerLevel) _ris |= IntRx;
            UpdateIrq();
        }
        return accepted;
    }

    /// <inheritdoc />
    /// <remarks>Not while the transmit interrupt is unmasked: every byte written raises it.</remarks>
    public bool TransmitMayBeQueued
    {
        get
        {
            lock (Gate) return (_imsc & IntTx) == 0;
        }
    }

    /// <inheritdoc />
    public event Action? TransmitQueueingChanged;

    /// <inheritdoc />
    public Action? StatusPolled { get; set; }

    /// <summary>The byte written to DR goes out, after the lock; a FIFO flush may have made room for input; a
    /// change of the transmit interrupt's mask is reported.</summary>
    protected override void AfterWrite(ulong register, uint value)
    {
        if (register == LcrH) ReportRoom();
        if (register == Imsc && Interlocked.Exchange(ref _transmitMaskChanged, 0) != 0) TransmitQueueingChanged?.Invoke();
        if (register != Dr) return;
        ReadOnlySpan<byte> b = [(byte)value];
        lock (_outputGate) _output.Write(b);
    }

    private int _transmitMaskChanged;

    /// <summary>A read of DR may have made room for refused input; FR is what a console polls.</summary>
    protected override void AfterRead(ulong register)
    {
        if (register == Dr) ReportRoom();
        else if (register == Fr) StatusPolled?.Invoke();
    }

    private void ReportRoom()
    {
        bool resume;
        lock (Gate)
        {
            resume = _resume;
            _resume = false;
        }
        if (resume) InputSpaceAvailable?.Invoke();
    }

    /// <summary>Room is back for refused input once the FIFO is at most half full. Under <see cref="PrimeCell.Gate"/>.</summary>
    private void NoteRoom()
    {
        if (!_inputHeldOff || _rxCount > Depth / 2) return;
        _inputHeldOff = false;
        _resume = true;
    }

    /// <inheritdoc />
    protected override bool InterruptAsserted => (_ris & _imsc) != 0;

    private int Depth => (_lcrH & LcrHFifoEnable) != 0 ? RxFifoCapacity : 1;

    /// <summary>FIFO entries that raise the receive interrupt: 1/8, 1/4, 1/2, 3/4 or 7/8 of the depth (IFLS 5:3).</summary>
    private int RxTriggerLevel => Depth == 1 ? 1 : ((_ifls >> 3) & 7) switch
    {
        0 => 2, 1 => 4, 3 => 12, 4 => 14, _ => 8,
    };

    /// <inheritdoc />
    protected override uint ReadRegister(ulong register)
    {
        switch (register)
        {
            case Dr:
                if (_rxCount == 0) return 0;
                byte b = _rx[_rxHead];
                _rxHead = (_rxHead + 1) % RxFifoCapacity;
                _rxCount--;
                if (_rxCount < RxTriggerLevel) _ris &= ~IntRx;
                if (_rxCount == 0) _ris &= ~IntRxTimeout;
                NoteRoom();
                return b;
            case RsrEcr: return 0; // no framing, parity, break or overrun errors
            case Fr: return FrTxEmpty | (_rxCount == 0 ? FrRxEmpty : 0) | (_rxCount >= Depth ? FrRxFull : 0);
            case Ilpr: return _ilpr;
            case Ibrd: return _ibrd;
            case Fbrd: return _fbrd;
            case LcrH: return _lcrH;
            case Cr: return _cr;
            case Ifls: return _ifls;
            case Imsc: return _imsc;
            case Ris: return _ris;
            case Mis: return _ris & _imsc;
            case DmaCr: return _dmaCr;
            default: return 0;
        }
    }

    /// <inheritdoc />
    protected override void WriteRegister(ulong register, uint value)
    {
        switch (register)
        {
            case Dr: _ris |= IntTx; break;
            case Ilpr: _ilpr = value & 0xFF; break;
            case Ibrd: _ibrd = value & 0xFFFF; break;
            case Fbrd: _fbrd = value & 0x3F; break;
            case LcrH:
                // Turning the FIFOs on or off flushes them.
                if (((_lcrH ^ value) & LcrHFifoEnable) != 0) (_rxHead, _rxCount, _ris) = (0, 0, _ris & ~(IntRx | IntRxTimeout));
                _lcrH = value & 0xFF;
                NoteRoom();
                break;
            case Cr: _cr = value & 0xFF87; break;
            case Ifls: _ifls = value & 0x3F; break;
            case Imsc:
                if (((_imsc ^ value) & IntTx) != 0) _transmitMaskChanged = 1;
                _imsc = value & IntMask;
                break;
            case Icr: _ris &= ~value; break;
            case DmaCr: _dmaCr = value & 7; break;
        }
    }
}
