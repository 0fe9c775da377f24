using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Vhost;

/// <summary>
/// A virtio device whose first queues a vhost-kernel device serves (<see cref="VhostKernelRings"/>); the VMM keeps
/// its configuration space, any further queue (vsock's event queue) and the interrupts. Features offered are the
/// device's, less the kernel-implemented ones the kernel lacks.
/// </summary>
public abstract class VhostKernelDevice : VirtioDevice
{
    private readonly ulong _deviceFeatures, _kernelBits;

    /// <param name="rings">The kernel's rings, owned by the device from now on.</param>
    /// <param name="deviceFeatures">The device-type feature bits the device would offer in user space.</param>
    /// <param name="kernelBits">The feature bits the kernel implements for this device type (rather than the
    /// backend behind it or the VMM).</param>
    protected VhostKernelDevice(uint deviceId, int queueCount, VhostKernelRings rings, ulong deviceFeatures, ulong kernelBits)
        : base(deviceId, queueCount)
    {
        Rings = rings;
        BackendQueues = rings.Queues;
        _deviceFeatures = deviceFeatures;
        _kernelBits = kernelBits;
    }

    protected VhostKernelRings Rings { get; }

    protected sealed override ulong DeviceFeatures => VhostKernelRings.Offer(_deviceFeatures, _kernelBits, Rings.Device.Features);

    protected sealed override ulong TransportFeatures => VhostKernelRings.Offer(base.TransportFeatures, _kernelBits, Rings.Device.Features);

    protected override void OnActivate()
    {
        Rings.Start(Memory, Queue, Features, QueueNotifyEvent);
        for (int i = 0; i < Rings.Count; i++) WatchBackendQueue(i);
        StartBackend();
    }

    protected override void OnReset()
    {
        StopBackend();
        Rings.Stop();
    }

    /// <summary>After the rings are handed over: start the kernel's device (vsock) or attach its backend (net).</summary>
    protected abstract void StartBackend();

    /// <summary>On reset or failure, before the rings are taken back.</summary>
    protected abstract void StopBackend();

    // The rings' positions live in the kernel; a saved state without them would restart the guest's queues wrongly.
    protected override void SaveDeviceState(StateWriter writer) =>
        throw new StateException($"{StateName} {Id}: its rings are served by {Rings.Device.Name}; saving its state is not supported");

    protected override void RestoreDeviceState(StateReader reader) =>
        throw new StateException($"{StateName} {Id}: its rings are served by {Rings.Device.Name}; restoring a state is not supported");

    public override void Dispose()
    {
        Rings.Dispose();
        base.Dispose();
    }
}
