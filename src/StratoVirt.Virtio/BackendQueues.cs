using StratoVirt.Sys;

namespace StratoVirt.Virtio;

/// <summary>
/// The queues of a virtio device that a backend outside the VMM serves, a vhost-user process or a vhost-kernel
/// device: the device's first <see cref="Count"/> queues (any further one, as vsock's event queue, stays with the
/// VMM). The backend gets three eventfds per queue: the kick is the queue's notify eventfd, which KVM signals on the
/// guest's QueueNotify write (ioeventfd), so a notification reaches the backend without the VMM; the call eventfd
/// here, which the backend signals when the driver should get a used-buffer interrupt (it applied the driver's
/// suppression already); and the error eventfd here, which it signals when it cannot use the ring.
/// </summary>
/// <remarks>
/// On virtio-mmio the call eventfd is not bound to the slot's irqfd: a virtio-mmio driver reads InterruptStatus on each interrupt
/// and ignores the rings unless the used-buffer bit is set, so the device's loop sets the bit and then pulses the
/// slot's line (<see cref="VirtioDevice.WatchBackendQueue"/>), which the microVM raises with KVM_IRQ_LINE in that
/// same thread rather than through an irqfd (KVM injects an IOAPIC pin's irqfd from a workqueue). That costs one
/// VMM wake-up per interrupt; binding the irqfd directly would spare it only if InterruptStatus always read "used
/// buffer", which also answers interrupts the device never raised. A virtio-pci function with MSI-X has no such
/// status to set: while a queue's vector is unmasked its call eventfd is bound to the vector's KVM irqfd
/// (<see cref="CallBound"/>) and the VMM is not woken.
/// </remarks>
public sealed class BackendQueues : IDisposable
{
    private readonly EventFd[] _call, _err;
    private readonly bool[] _callBound;

    /// <param name="count">How many of the device's first queues the backend serves.</param>
    /// <param name="backend">Names the backend in the failure its error eventfd causes.</param>
    public BackendQueues(int count, string backend)
    {
        Count = count;
        Backend = backend;
        _call = new EventFd[count];
        _err = new EventFd[count];
        _callBound = new bool[count];
        try
        {
            for (int i = 0; i < count; i++)
            {
                _call[i] = new EventFd();
                _err[i] = new EventFd();
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Count { get; }

    public string Backend { get; }

    /// <summary>The eventfd the backend signals when queue <paramref name="queue"/> wants an interrupt.</summary>
    public EventFd Call(int queue) => _call[queue];

    /// <summary>Whether queue <paramref name="queue"/>'s call eventfd is bound to an interrupt in the hypervisor (an
    /// MSI-X vector's KVM irqfd), so the device's loop does not relay it.</summary>
    public bool CallBound(int queue) => _callBound[queue];

    internal void SetCallBound(int queue, bool bound) => _callBound[queue] = bound;

    /// <summary>The eventfd the backend signals when it cannot use queue <paramref name="queue"/>'s ring.</summary>
    public EventFd Error(int queue) => _err[queue];

    /// <summary>Empties every call and error eventfd, after the backend stopped using the rings, so that a signal
    /// left from before a reset does not reach the driver after the next start.</summary>
    public void Drain()
    {
        foreach (var fd in _call) fd.Drain();
        foreach (var fd in _err) fd.Drain();
    }

    public void Dispose()
    {
        foreach (var fd in _call) fd?.Dispose();
        foreach (var fd in _err) fd?.Dispose();
    }
}
