using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Transport;

/// <summary>How a transport turns what its core reports into interrupts: a virtio-mmio slot pulses its IRQ line; a
/// virtio-pci function would send the queue's or the configuration's MSI-X vector.</summary>
public interface IVirtioInterrupts
{
    /// <summary>Queue <paramref name="queue"/> has used buffers the driver wants to hear about.</summary>
    void QueueUsed(int queue);

    /// <summary>The configuration space changed, or the device stopped and needs a reset.</summary>
    void ConfigChanged();
}

/// <summary>Which of a virtqueue's three areas a driver places (virtio 1.2, 2.7).</summary>
public enum VirtqueueArea { Descriptors, Driver, Device }

/// <summary>
/// The transport-independent half of a virtio device's transport (virtio 1.2, sections 2 and 3.1): device status
/// and its rules, 64-bit feature negotiation read and written as 32-bit words by select, each queue's
/// configuration, reset and NEEDS_RESET, the configuration space and its generation, the interrupt status bits,
/// and queue notifications dispatched to the device on its loop. A transport is a register map over it that
/// delivers <see cref="IVirtioInterrupts"/> its own way. Register accesses come from vCPU threads and take the
/// device's <see cref="VirtioDevice.Gate"/>; notifications arrive on per-queue eventfds (bound to the notify
/// register with KVM ioeventfd where available, signalled by <see cref="Notify"/> otherwise) that the device's
/// loop serves.
/// </summary>
public sealed partial class VirtioCore : IVirtioTransport, IDisposable
{
    private readonly VirtioDevice _device;
    private readonly GuestMemory _memory;
    private readonly IVirtioInterrupts _interrupts;
    private readonly Virtqueue[] _queues;
    private readonly EventFd[] _notify;
    private readonly ulong[] _notifyTokens;
    private uint _status, _deviceFeaturesSelect, _driverFeaturesSelect, _queueSelect, _configGeneration;
    private int _interruptStatus;
    private ulong _driverFeatures;
    private bool _failed;

    public VirtioCore(VirtioDevice device, GuestMemory memory, IVirtioInterrupts interrupts)
    {
        _device = device;
        _memory = memory;
        _interrupts = interrupts;
        _queues = new Virtqueue[device.QueueCount];
        _notify = new EventFd[device.QueueCount];
        _notifyTokens = new ulong[device.QueueCount];
        for (int i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new Virtqueue(i, device.MaxQueueSize);
            _notify[i] = new EventFd();
        }
    }

    public VirtioDevice Device => _device;

    /// <summary>The eventfd of queue <paramref name="index"/>'s notifications, for KVM ioeventfd.</summary>
    public EventFd NotifyEvent(int index) => _notify[index];

    /// <summary>Whether KVM delivers notify writes straight to the eventfds (set by the machine).</summary>
    public bool KernelNotify { get; set; }

    /// <summary>Starts serving the queue eventfds on the device's loop (unless an external backend reads them).</summary>
    public void Attach()
    {
        _device.OnAttach();
        for (int i = 0; i < _notify.Length; i++)
        {
            if (_device.BackendServes(i)) continue; // the backend reads this eventfd
            int index = i;
            _notifyTokens[i] = _device.Loop.Add(_notify[i].Fd, Libc.EPOLLIN, _ => OnNotify(index));
        }
    }

    /// <summary>The driver notified queue <paramref name="queue"/> with a register write KVM did not take (no
    /// ioeventfd, or a value no queue matches); a queue that does not exist is ignored.</summary>
    public void Notify(uint queue)
    {
        if (queue < _notify.Length && !KernelNotify) _notify[queue].Signal();
    }

    private void OnNotify(int index)
    {
        _notify[index].Drain();
        lock (_device.Gate)
        {
            // A queue the driver left unready has nothing to serve (activation looks at every queue once).
            if (!_device.Active || !_queues[index].Active) return;
            try { _device.ProcessQueue(index); }
            catch (Exception e) { FailLocked(VirtioDevice.DescribeFailure(e)); }
        }
    }

    // ---- device status ----

    public uint Status
    {
        get { lock (_device.Gate) return _status; }
    }

    /// <summary>The driver writes the status: 0 resets the device; FEATURES_OK is kept only if the features are
    /// acceptable; DRIVER_OK activates the device unless the driver gave up (FAILED) or the device stopped.</summary>
    public void WriteStatus(uint value)
    {
        lock (_device.Gate)
        {
            if (value == 0)
            {
                ResetLocked();
                return;
            }
            uint added = value & ~_status;
            _status |= value;
            if ((added & VirtioStatus.FeaturesOk) != 0 && !FeaturesAcceptable())
                _status &= ~VirtioStatus.FeaturesOk; // the driver reads it back and gives up
            // A driver that wrote FAILED has given up on the device: it does not go live until a reset.
            if ((added & VirtioStatus.DriverOk) != 0 && (_status & VirtioStatus.FeaturesOk) != 0
                && (_status & VirtioStatus.Failed) == 0 && !_failed)
                ActivateLocked();
        }
    }

    /// <summary>Queues and features are the driver's to set only before DRIVER_OK, and not once either side gave up.</summary>
    private bool Configurable => (_status & (VirtioStatus.DriverOk | VirtioStatus.Failed)) == 0 && !_failed;

    // ---- features ----

    public void SelectDeviceFeatures(uint word)
    {
        lock (_device.Gate) _deviceFeaturesSelect = word;
    }

    /// <summary>The selected 32-bit word of the features the device offers (0 past the second).</summary>
    public uint DeviceFeatures
    {
        get
        {
            lock (_device.Gate)
            {
                return _deviceFeaturesSelect switch
                {
                    0 => (uint)_device.OfferedFeatures,
                    1 => (uint)(_device.OfferedFeatures >> 32),
                    _ => 0,
                };
            }
        }
    }

    public void SelectDriverFeatures(uint word)
    {
        lock (_device.Gate) _driverFeaturesSelect = word;
    }

    /// <summary>The words the driver selected, as it reads them back.</summary>
    public (uint Device, uint Driver) FeatureSelects
    {
        get { lock (_device.Gate) return (_deviceFeaturesSelect, _driverFeaturesSelect); }
    }

    /// <summary>The selected 32-bit word of the features the driver accepted so far (0 past the second).</summary>
    public uint DriverFeatures
    {
        get
        {
            lock (_device.Gate)
            {
                return _driverFeaturesSelect switch
                {
                    0 => (uint)_driverFeatures,
                    1 => (uint)(_driverFeatures >> 32),
                    _ => 0,
                };
            }
        }
    }

    /// <summary>The driver accepts the selected word of features; ignored once FEATURES_OK is set.</summary>
    public void WriteDriverFeatures(uint value)
    {
        lock (_device.Gate)
        {
            if ((_status & VirtioStatus.FeaturesOk) != 0) return;
            if (_driverFeaturesSelect == 0) _driverFeatures = (_driverFeatures & ~0xFFFF_FFFFUL) | value;
            else if (_driverFeaturesSelect == 1) _driverFeatures = (_driverFeatures & 0xFFFF_FFFFUL) | ((ulong)value << 32);
        }
    }

    private bool FeaturesAcceptable()
    {
        if ((_driverFeatures & ~_device.OfferedFeatures) != 0)
        {
            Log.Warn($"virtio {_device.Id}: the driver accepted features 0x{_driverFeatures:x} beyond those offered (0x{_device.OfferedFeatures:x})");
            return false;
        }
        if ((_driverFeatures & VirtioFeature.Version1) == 0)
        {
            Log.Warn($"virtio {_device.Id}: the driver did not accept VIRTIO_F_VERSION_1; legacy drivers are not supported");
            return false;
        }
        return true;
    }

    // ---- queues ----

    public void SelectQueue(uint index)
    {
        lock (_device.Gate) _queueSelect = index;
    }

    /// <summary>The queue index the driver selected (possibly one that does not exist).</summary>
    public uint SelectedQueue
    {
        get { lock (_device.Gate) return _queueSelect; }
    }

    private Virtqueue? Selected => _queueSelect < _queues.Length ? _queues[_queueSelect] : null;

    /// <summary>The selected queue while the driver may configure it; null otherwise.</summary>
    private Virtqueue? SelectedConfigurable => Configurable ? Selected : null;

    /// <summary>The selected queue's largest size; 0 for a queue that does not exist.</summary>
    public ushort QueueSizeMax
    {
        get { lock (_device.Gate) return Selected?.MaxSize ?? 0; }
    }

    /// <summary>The selected queue's size as the driver set it (its largest until then); 0 for a queue that does
    /// not exist.</summary>
    public ushort QueueSize
    {
        get { lock (_device.Gate) return Selected?.Size ?? 0; }
    }

    /// <summary>Where the driver placed an area of the selected queue; 0 for a queue that does not exist.</summary>
    public ulong QueueAddress(VirtqueueArea area)
    {
        lock (_device.Gate)
        {
            if (Selected is not { } q) return 0;
            return area switch
            {
                VirtqueueArea.Descriptors => q.DescTable,
                VirtqueueArea.Driver => q.AvailRing,
                _ => q.UsedRing,
            };
        }
    }

    public bool QueueReady
    {
        get { lock (_device.Gate) return Selected is { Ready: true }; }
    }

    /// <summary>The driver sizes the selected queue (only while it is not ready).</summary>
    public void SetQueueSize(uint size)
    {
        lock (_device.Gate)
            if (SelectedConfigurable is { Ready: false } q) q.Size = (ushort)Math.Min(size, ushort.MaxValue);
    }

    public void SetQueueReady(bool ready)
    {
        lock (_device.Gate)
            if (SelectedConfigurable is { } q) q.Ready = ready;
    }

    /// <summary>The driver places one half (<paramref name="high"/>: bits 32-63) of an area of the selected queue
    /// (only while it is not ready).</summary>
    public void SetQueueAddress(VirtqueueArea area, bool high, uint value)
    {
        lock (_device.Gate)
        {
            if (SelectedConfigurable is not { Ready: false } q) return;
            switch (area)
            {
                case VirtqueueArea.Descriptors: q.DescTable = Half(q.DescTable); break;
                case VirtqueueArea.Driver: q.AvailRing = Half(q.AvailRing); break;
                case VirtqueueArea.Device: q.UsedRing = Half(q.UsedRing); break;
            }
        }

        ulong Half(ulong old) =>
            high ? (old & 0xFFFF_FFFFUL) | ((ulong)value << 32) : (old & ~0xFFFF_FFFFUL) | value;
    }

    // ---- interrupts and configuration ----

    public uint InterruptStatus => (uint)Volatile.Read(ref _interruptStatus);

    /// <summary>Reads and clears the interrupt status in one step (virtio-pci's ISR status).</summary>
    public uint TakeInterruptStatus() => (uint)Interlocked.Exchange(ref _interruptStatus, 0);

    public void AcknowledgeInterrupt(uint bits) => Interlocked.And(ref _interruptStatus, ~(int)bits);

    /// <summary>Changes whenever the device changes its configuration space (virtio 1.2, 2.5.1).</summary>
    public uint ConfigGeneration => Volatile.Read(ref _configGeneration);

    /// <summary>Reads the device-specific configuration space; a device that fails doing so reads as all ones and
    /// stops.</summary>
    public void ReadConfig(uint offset, Span<byte> data)
    {
        lock (_device.Gate)
        {
            try { _device.ReadConfig(offset, data); }
            catch (Exception e)
            {
                data.Fill(0xff);
                FailLocked($"reading its configuration space: {VirtioDevice.DescribeFailure(e)}");
            }
        }
    }

    public void WriteConfig(uint offset, ReadOnlySpan<byte> data)
    {
        lock (_device.Gate)
        {
            try { _device.WriteConfig(offset, data); }
            catch (Exception e) { FailLocked($"writing its configuration space: {VirtioDevice.DescribeFailure(e)}"); }
        }
    }

    // ---- activation, reset, failure ----

    /// <summary>Checks and starts the ready queues and the device; <paramref name="restorePositions"/> (a restore)
    /// moves each started queue to where it was.</summary>
    private void ActivateLocked(Action<int>? restorePositions = null)
    {
        try
        {
            for (int i = 0; i < _queues.Length; i++)
            {
                if (!_queues[i].Ready) continue;
                _queues[i].Activate(_memory, _driverFeatures);
                restorePositions?.Invoke(i);
            }
            _device.Activate(this, _memory, _queues, _driverFeatures);
        }
        catch (Exception e)
        {
            FailLocked(VirtioDevice.DescribeFailure(e));
            return;
        }
        // Notifications that arrived before DRIVER_OK were dropped; look at every queue once.
        foreach (var fd in _notify) fd.Signal();
    }

    private void ResetLocked()
    {
        DeactivateDevice();
        foreach (var q in _queues) q.Reset();
        _status = 0;
        _failed = false;
        _driverFeatures = 0;
        _deviceFeaturesSelect = _driverFeaturesSelect = _queueSelect = 0;
        Volatile.Write(ref _interruptStatus, 0);
    }

    public void SignalUsed(int queue)
    {
        Interlocked.Or(ref _interruptStatus, (int)VirtioInterruptStatus.UsedBuffer);
        _interrupts.QueueUsed(queue);
    }

    public void SignalConfigChange()
    {
        Interlocked.Increment(ref _configGeneration);
        Interlocked.Or(ref _interruptStatus, (int)VirtioInterruptStatus.ConfigChange);
        _interrupts.ConfigChanged();
    }

    /// <summary>Called from the device's own processing (Gate already held).</summary>
    public void Fail(string reason) => FailLocked(reason);

    private void FailLocked(string reason)
    {
        if (_failed) return;
        _failed = true;
        Log.Warn($"virtio {_device.Id}: device stopped until the driver resets it: {reason}");
        DeactivateDevice();
        _status |= VirtioStatus.NeedsReset;
        SignalConfigChange();
    }

    /// <summary>Stops the device's host side; a device that fails even to stop is logged, and the core's state
    /// (status, queues) still goes back as the driver asked.</summary>
    private void DeactivateDevice()
    {
        try { _device.Deactivate(); }
        catch (Exception e) { Log.Warn($"virtio {_device.Id}: stopping the device failed: {VirtioDevice.DescribeFailure(e)}"); }
    }

    public void Dispose()
    {
        for (int i = 0; i < _notify.Length; i++)
        {
            if (_notifyTokens[i] != 0) _device.Loop.Remove(_notifyTokens[i]);
            _notify[i].Dispose();
        }
        _device.Dispose();
    }
}
