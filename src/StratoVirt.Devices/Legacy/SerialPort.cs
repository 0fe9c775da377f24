using StratoVirt.Sys;

namespace StratoVirt.Devices.Legacy;

// Inside this namespace, so that the type wins over the sibling namespace StratoVirt.Devices.Chardev.
using StratoVirt.Devices.Chardev;

/// <summary>A serial port on a chardev (-serial) with the PC's 16550A UART.</summary>
public sealed class SerialPort : SerialPort<Serial16550>
{
    /// <summary>A 16550A raising <paramref name="irq"/> on <paramref name="chardev"/>, which it claims.</summary>
    /// <exception cref="ChardevException">A device already uses the chardev.</exception>
    public SerialPort(IInterruptLine irq, Chardev chardev) : base(chardev, c => new Serial16550(irq, c))
    {
    }
}

/// <summary>
/// A serial port on a chardev (-serial): a UART (16550A, PL011) that transmits into the chardev and receives what
/// the chardev's host side sends, with flow control instead of polling.
/// </summary>
/// <remarks>
/// Output goes through a <see cref="SerialOutputBuffer"/>, which the event loop flushes once the port is attached.
/// <para/>
/// Input is read on the event loop when the chardev is readable, as much as the receive FIFO has room for. When
/// the FIFO is full, or the guest holds the port in loopback, one byte more is read and refused, and the chardev's
/// input watch is turned off: further bytes wait in the host fd (the kernel's buffer), and no loop iteration runs
/// without progress. The refusal makes the UART raise <see cref="IUartReceiver.InputSpaceAvailable"/> once the guest
/// has read the FIFO down (on that vCPU); the refused bytes then go first and the watch is turned back on.
/// Nothing is dropped and the order is kept.
/// </remarks>
public class SerialPort<TUart> where TUart : IUartReceiver
{
    private readonly Chardev _chardev;
    private readonly Lock _gate = new(); // input from the loop thread and room from a vCPU, one at a time
    private readonly byte[] _held = new byte[Serial16550.RxFifoCapacity];
    private int _heldStart, _heldEnd;

    /// <summary>A port on <paramref name="chardev"/>, which it claims, with the UART <paramref name="uart"/> makes
    /// to transmit into the port's output buffer.</summary>
    /// <exception cref="ChardevException">A device already uses the chardev.</exception>
    public SerialPort(Chardev chardev, Func<ISerialOutput, TUart> uart)
    {
        ArgumentNullException.ThrowIfNull(chardev);
        ArgumentNullException.ThrowIfNull(uart);
        chardev.Claim(this);
        _chardev = chardev;
        Output = new SerialOutputBuffer(chardev);
        Uart = uart(Output);
        Uart.InputSpaceAvailable += OnInputSpace;
    }

    /// <summary>The device the bus maps.</summary>
    public TUart Uart { get; }

    public Chardev Chardev => _chardev;

    /// <summary>What the UART transmitted and the chardev has not yet been given; the loop given to
    /// <see cref="Attach"/> must run its <see cref="SerialOutputBuffer.FlushIfDue"/>.</summary>
    public SerialOutputBuffer Output { get; }

    /// <summary>Starts taking input (the chardev is watched on <paramref name="loop"/>) and batching output, which
    /// <paramref name="loop"/>'s owner flushes. Once.</summary>
    public void Attach(EventLoop loop)
    {
        _chardev.Attach(loop, OnInput);
        Output.Start(loop.Wake);
    }

    /// <summary>The chardev is readable (loop thread): moves input into the FIFO while it has room.</summary>
    private void OnInput()
    {
        lock (_gate)
        {
            while (OfferHeld())
            {
                // At least one byte even when the FIFO is full: the UART refusing it is what makes it report room.
                int n = _chardev.Read(_held.AsSpan(0, Math.Clamp(Uart.InputRoom, 1, _held.Length)));
                if (n == 0) return; // nothing more now; the chardev handles end of input and disconnects itself
                _heldStart = 0;
                _heldEnd = n;
            }
            _chardev.SetInputEnabled(false);
        }
    }

    /// <summary>The FIFO has room again after a refusal (the vCPU that read it).</summary>
    private void OnInputSpace()
    {
        lock (_gate)
        {
            if (OfferHeld()) _chardev.SetInputEnabled(true);
        }
    }

    /// <summary>Queues the held bytes in the UART; true when none is left. Under <see cref="_gate"/>.</summary>
    private bool OfferHeld()
    {
        if (_heldStart < _heldEnd) _heldStart += Uart.EnqueueInput(_held.AsSpan(_heldStart, _heldEnd - _heldStart));
        return _heldStart == _heldEnd;
    }
}
