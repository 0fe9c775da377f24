using StratoVirt.Sys;

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

/// <summary>Routes in the hypervisor from eventfds to MSI messages (KVM GSI routing and irqfd): a bound eventfd that
/// is signalled interrupts the guest in the kernel, without waking the VMM.</summary>
public interface IIrqfdRoutes
{
    /// <summary>Routes a new interrupt number to <paramref name="message"/> and binds <paramref name="fd"/> to it;
    /// returns the number. A host that cannot (no routes left) throws SysException and binds nothing.</summary>
    uint Bind(EventFd fd, MsiMessage message);

    /// <summary>Points a bound number at another message (the guest reprogrammed an unmasked vector).</summary>
    void Retarget(uint gsi, MsiMessage message);

    /// <summary>Unbinds <paramref name="fd"/> and frees its number; once this returns the kernel no longer takes
    /// the eventfd's signals.</summary>
    void Unbind(EventFd fd, uint gsi);
}
