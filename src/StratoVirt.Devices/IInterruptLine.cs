namespace StratoVirt.Devices;

/// <summary>
/// An interrupt wire from a device to the interrupt controller. A device raises an edge with <see cref="Pulse"/>
/// (an ISA IRQ, a virtio-mmio slot's interrupt) or holds a level with <see cref="SetLevel"/> until it deasserts
/// it (a PCI INTx line, which the controller samples again after the guest's end of interrupt).
/// </summary>
public interface IInterruptLine
{
    /// <summary>One edge: the line goes up and comes down again.</summary>
    void Pulse();

    /// <summary>Asserts or deasserts the line as a level.</summary>
    void SetLevel(bool asserted);
}

/// <summary>A message-signalled interrupt (MSI, or an MSI-X table entry): the address and data the device writes.</summary>
public readonly record struct MsiMessage(ulong Address, uint Data);

/// <summary>Where a device's MSI messages go: the machine's interrupt controller.</summary>
public interface IMsiController
{
    void Send(MsiMessage message);
}
