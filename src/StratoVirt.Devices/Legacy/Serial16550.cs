using StratoVirt.Memory;

namespace StratoVirt.Devices.Legacy;

/// <summary>
/// A 16550A UART occupying eight consecutive ports (COM1 is 0x3F8, IRQ 4). Transmitted bytes leave at once, so
/// the transmitter is always empty; received bytes wait in a bounded FIFO filled by <see cref="EnqueueInput"/>.
/// </summary>
/// <remarks>
/// Threading: register accesses come from vCPU threads and input from the main loop; one lock guards the state.
/// The output sink, the interrupt line and <see cref="InputSpaceAvailable"/> are called after that lock is
/// released, so a slow console never blocks input. The interrupt line is driven as a level (is any enabled
/// source pending?) and <see cref="IInterruptLine.Pulse"/> fires on each rising edge, the way an ISA PIC sees
/// a real UART. Interrupts are not gated by MCR OUT2.
/// </remarks>
public sealed partial class Serial16550 : IBusDevice, IUartReceiver, IQueueableTransmit
{
    /// <summary>Number of ports the device decodes.</summary>
    public const ulong Length = 8;

    /// <summary>Bytes the receive FIFO holds; input beyond this is refused, not dropped.</summary>
    public const int RxFifoCapacity = 64;

    // Register offsets. DLAB (LCR bit 7) turns offsets 0 and 1 into the divisor latch.
    private const ulong RbrThrDll = 0, IerDlm = 1, IirFcr = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;

    private const byte IerRxData = 0x01, IerThrEmpty = 0x02, IerLineStatus = 0x04, IerModemStatus = 0x08;
    private const byte IerMask = 0x0F;

    private const byte IirNone = 0x01, IirModemStatus = 0x00, IirThrEmpty = 0x02, IirRxData = 0x04;
    private const byte IirLineStatus = 0x06, IirFifoEnabled = 0xC0;

    private const byte FcrEnable = 0x01, FcrClearRx = 0x02;
    private const byte LcrDlab = 0x80;

    private const byte McrDtr = 0x01, McrRts = 0x02, McrOut1 = 0x04, McrOut2 = 0x08, McrLoop = 0x10;
    private const byte McrMask = 0x1F;

    private const byte LsrDataReady = 0x01, LsrOverrun = 0x02, LsrThrEmpty = 0x20, LsrTxEmpty = 0x40;

    private const byte MsrCts = 0x10, MsrDsr = 0x20, MsrRi = 0x40, MsrDcd = 0x80;

    // Reset divisor 12 is 9600 baud from the 1.8432 MHz clock; nothing here depends on it.
    private const byte DefaultDivisorLow = 12;

    private readonly Lock _gate = new();
    private readonly Lock _outputGate = new(); // keeps sink calls in order without holding _gate
    private readonly IInterruptLine _irq;
    private readonly ISerialOutput _output;
    private readonly byte[] _rx = new byte[RxFifoCapacity];
    private int _rxHead;
    private int _rxCount;

    private byte _ier;
    private byte _lcr;
    private byte _mcr;
    private byte _scr;
    private byte _dll = DefaultDivisorLow;
    private byte _dlm;
    private byte _lineErrors;   // LSR error bits latched until LSR is read
    private byte _modemDeltas;  // MSR bits 3:0 latched until MSR is read
    private bool _fifoEnabled;
    private bool _thrEmptyPending; // the THRE interrupt indication, cleared by an IIR read or a THR write
    private bool _irqLevel;
    private bool _inputHeldOff;    // EnqueueInput refused bytes; tell the caller when there is room again

    /// <summary>Creates a UART that raises <paramref name="irq"/> and transmits into <paramref name="output"/>.</summary>
    public Serial16550(IInterruptLine irq, ISerialOutput output)
    {
        ArgumentNullException.ThrowIfNull(irq);
        ArgumentNullException.ThrowIfNull(output);
        _irq = irq;
        _output = output;
    }

    /// <summary>
    /// Raised, on the thread that freed the space, once the receive FIFO is at most half full again after
    /// <see cref="EnqueueInput"/> had to refuse bytes (or loopback mode, which refuses all input, ended).
    /// </summary>
    public event Action? InputSpaceAvailable;

    /// <summary>How many bytes <see cref="EnqueueInput"/> would accept right now: none while the guest has the port
    /// in loopback.</summary>
    public int InputRoom
    {
        get
        {
            lock (_gate) return Loopback ? 0 : RxFifoCapacity - _rxCount;
        }
    }

    /// <summary>
    /// Queues bytes the guest will receive and returns how many fit; the caller keeps the rest and retries after
    /// <see cref="InputSpaceAvailable"/>. Input is refused entirely while the guest has the port in loopback.
    /// </summary>
    public int EnqueueInput(ReadOnlySpan<byte> bytes)
    {
        int accepted;
        bool raise;
        lock (_gate)
        {
            accepted = Loopback ? 0 : Math.Min(bytes.Length, RxFifoCapacity - _rxCount);
            for (int i = 0; i < accepted; i++) PushRx(bytes[i]);
            if (accepted < bytes.Length) _inputHeldOff = true;
            raise = SampleIrq();
        }
        if (raise) _irq.Pulse();
        return accepted;
    }

    /// <inheritdoc />
    public void Read(ulong offset, Span<byte> data)
    {
        bool raise, resume;
        lock (_gate)
        {
            // A wide access is split into byte accesses at consecutive ports, as the ISA bus does.
            for (int i = 0; i < data.Length; i++) data[i] = ReadRegister(offset + (ulong)i);
            raise = SampleIrq();
            resume = TakeResume();
        }
        Notify(raise, resume);
        if (offset <= Lsr && Lsr < offset + (ulong)data.Length) StatusPolled?.Invoke();
    }

    /// <inheritdoc />
    public Action? StatusPolled { get; set; }

    /// <inheritdoc />
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        int transmitted = -1;
        bool raise, resume, queueingChanged;
        lock (_gate)
        {
            bool queueable = TransmitQueueable;
            for (int i = 0; i < data.Length; i++) WriteRegister(offset + (ulong)i, data[i], ref transmitted);
            raise = SampleIrq();
            resume = TakeResume();
            queueingChanged = queueable != TransmitQueueable;
        }
        if (transmitted >= 0)
        {
            byte b = (byte)transmitted;
            lock (_outputGate) _output.Write(new ReadOnlySpan<byte>(in b));
        }
        Notify(raise, resume);
        if (queueingChanged) TransmitQueueingChanged?.Invoke();
    }

    /// <inheritdoc />
    /// <remarks>Not while the THR-empty interrupt is enabled or the port is in loopback (where the byte would enter
    /// the receive FIFO and could raise the received-data interrupt). The kernel console's output, polled byte by
    /// byte with the interrupts off, is the case this serves.</remarks>
    public bool TransmitMayBeQueued
    {
        get
        {
            lock (_gate) return TransmitQueueable;
        }
    }

    /// <inheritdoc />
    public event Action? TransmitQueueingChanged;

    private bool TransmitQueueable => (_ier & IerThrEmpty) == 0 && !Loopback;

    /// <summary>The power-on state (a machine reset): the registers back to their defaults and the receive FIFO
    /// emptied; input that was held off for want of room resumes.</summary>
    public void Reset()
    {
        bool resume, queueingChanged;
        lock (_gate)
        {
            bool queueable = TransmitQueueable;
            (_ier, _lcr, _mcr, _scr, _dll, _dlm) = (0, 0, 0, 0, DefaultDivisorLow, 0);
            (_lineErrors, _modemDeltas, _fifoEnabled, _thrEmptyPending, _irqLevel) = (0, 0, false, false, false);
            ClearRx();
            resume = TakeResume();
            queueingChanged = queueable != TransmitQueueable;
        }
        Notify(false, resume);
        if (queueingChanged) TransmitQueueingChanged?.Invoke();
    }

    private bool Loopback => (_mcr & McrLoop) != 0;

    private void Notify(bool raise, bool resume)
    {
        if (raise) _irq.Pulse();
        if (resume) InputSpaceAvailable?.Invoke();
    }

    private byte ReadRegister(ulong offset)
    {
        switch (offset)
        {
            case RbrThrDll:
                if ((_lcr & LcrDlab) != 0) return _dll;
                return _rxCount > 0 ? PopRx() : (byte)0;
            case IerDlm:
                return (_lcr & LcrDlab) != 0 ? _dlm : _ier;
            case IirFcr:
            {
                byte id = InterruptId();
                if (id == IirThrEmpty) _thrEmptyPending = false; // reading IIR acknowledges THRE
                return (byte)(id | (_fifoEnabled ? IirFifoEnabled : 0));
            }
            case Lcr:
                return _lcr;
            case Mcr:
                return _mcr;
            case Lsr:
            {
                // The transmitter drains instantly, so THRE and TEMT are always set.
                byte lsr = (byte)(LsrThrEmpty | LsrTxEmpty | _lineErrors | (_rxCount > 0 ? LsrDataReady : 0));
                _lineErrors = 0;
                return lsr;
            }
            case Msr:
            {
                byte msr = (byte)(ModemStatusLines() | _modemDeltas);
                _modemDeltas = 0;
                return msr;
            }
            case Scr:
                return _scr;
            default:
                return 0xFF;
        }
    }

    private void WriteRegister(ulong offset, byte value, ref int transmitted)
    {
        switch (offset)
        {
            case RbrThrDll:
                if ((_lcr & LcrDlab) != 0) _dll = value;
                else Transmit(value, ref transmitted);
                break;
            case IerDlm:
                if ((_lcr & LcrDlab) != 0) _dlm = value;
                else WriteIer(value);
                break;
            case IirFcr:
                WriteFcr(value);
                break;
            case Lcr:
                _lcr = value;
                break;
            case Mcr:
                WriteMcr(value);
                break;
            case Scr:
                _scr = value;
                break;
            default:
                break; // LSR and MSR are read-only
        }
    }

    private void Transmit(byte value, ref int transmitted)
    {
        // Writing THR drops a pending THRE interrupt; the byte then leaves at once and THRE rises again, which is a
        // fresh edge for the guest.
        _thrEmptyPending = false;
        _irqLevel &= InterruptId() != IirNone;

        if (Loopback)
        {
            if (_rxCount < RxFifoCapacity) PushRx(value);
            else _lineErrors |= LsrOverrun;
        }
        else
        {
            transmitted = value;
        }
        _thrEmptyPending = true;
    }

    private void WriteIer(byte value)
    {
        byte next = (byte)(value & IerMask);
        // Linux (and Windows) expect enabling THRI while the holder is empty to raise THRE even if an earlier IIR
        // read acknowledged it; disabling THRI forgets the indication.
        if (((_ier ^ next) & IerThrEmpty) != 0) _thrEmptyPending = (next & IerThrEmpty) != 0;
        _ier = next;
    }

    private void WriteFcr(byte value)
    {
        bool enable = (value & FcrEnable) != 0;
        if (enable != _fifoEnabled)
        {
            _fifoEnabled = enable; // switching FIFO mode empties the FIFOs
            ClearRx();
        }
        else if (enable && (value & FcrClearRx) != 0)
        {
            ClearRx();
        }
        // Trigger levels (bits 7:6) are accepted and ignored: received data is reported as soon as one byte waits.
    }

    private void WriteMcr(byte value)
    {
        byte before = ModemStatusLines();
        _mcr = (byte)(value & McrMask);
        byte after = ModemStatusLines();
        // Delta bits: CTS, DSR and DCD on any change; RI only on its trailing edge.
        byte changed = (byte)((before ^ after) & (MsrCts | MsrDsr | MsrDcd));
        byte riFell = (byte)(before & ~after & MsrRi);
        _modemDeltas |= (byte)((changed | riFell) >> 4);
    }

    // Outside loopback the host end is always connected and ready; in loopback the outputs feed the inputs.
    private byte ModemStatusLines()
    {
        if (!Loopback) return MsrDcd | MsrDsr | MsrCts;
        int m = _mcr;
        return (byte)(((m & McrDtr) << 5) | ((m & McrRts) << 3) | ((m & McrOut1) << 4) | ((m & McrOut2) << 4));
    }

    // Highest-priority enabled source: line status, received data, THR empty, modem status.
    private byte InterruptId()
    {
        if ((_ier & IerLineStatus) != 0 && _lineErrors != 0) return IirLineStatus;
        if ((_ier & IerRxData) != 0 && _rxCount > 0) return IirRxData;
        if ((_ier & IerThrEmpty) != 0 && _thrEmptyPending) return IirThrEmpty;
        if ((_ier & IerModemStatus) != 0 && _modemDeltas != 0) return IirModemStatus;
        return IirNone;
    }

    // Returns true when the line just went from idle to asserted.
    private bool SampleIrq()
    {
        bool level = InterruptId() != IirNone;
        bool rising = level && !_irqLevel;
        _irqLevel = level;
        return rising;
    }

    private bool TakeResume()
    {
        if (!_inputHeldOff || Loopback || _rxCount > RxFifoCapacity / 2) return false;
        _inputHeldOff = false;
        return true;
    }

    private void PushRx(byte value)
    {
        int tail = _rxHead + _rxCount;
        if (tail >= RxFifoCapacity) tail -= RxFifoCapacity;
        _rx[tail] = value;
        _rxCount++;
    }

    private byte PopRx()
    {
        byte value = _rx[_rxHead];
        _rxHead = _rxHead + 1 == RxFifoCapacity ? 0 : _rxHead + 1;
        _rxCount--;
        return value;
    }

    private void ClearRx()
    {
        _rxHead = 0;
        _rxCount = 0;
    }
}
