namespace StratoVirt.Devices.Legacy;

/// <summary>
/// A UART whose transmit register writes may reach it later than the guest made them, as long as they arrive in
/// order and before the guest's next access that is served at once (KVM's coalesced ring, drained before every
/// exit): what the machine needs to know to let KVM queue them.
/// </summary>
public interface IQueueableTransmit
{
    /// <summary>Whether a transmit write has no effect the guest could see without another access (no transmit
    /// interrupt enabled, no loopback).</summary>
    bool TransmitMayBeQueued { get; }

    /// <summary>Raised when <see cref="TransmitMayBeQueued"/> changes, outside the UART's lock, on the thread whose
    /// access, reset or restore changed it, before that access completes for the guest.</summary>
    event Action? TransmitQueueingChanged;

    /// <summary>Called after each read of the status register a console polls before every byte it transmits (the
    /// 16550A's line status, the PL011's flags), outside the UART's lock, on the reading vCPU.</summary>
    Action? StatusPolled { get; set; }
}
