namespace StratoVirt.Devices.Legacy;

/// <summary>The receive side of a UART (16550A, PL011) as a <see cref="SerialPort{TUart}"/> feeds it: bytes go in
/// while its FIFO has room; after a refusal it says when room is back.</summary>
public interface IUartReceiver
{
    /// <summary>How many bytes <see cref="EnqueueInput"/> would accept right now.</summary>
    int InputRoom { get; }

    /// <summary>Queues bytes the guest will receive and returns how many fit; the caller keeps the rest and retries
    /// after <see cref="InputSpaceAvailable"/>.</summary>
    int EnqueueInput(ReadOnlySpan<byte> bytes);

    /// <summary>Raised, on the thread that freed the space, once the FIFO has room again after
    /// <see cref="EnqueueInput"/> refused bytes.</summary>
    event Action? InputSpaceAvailable;
}
