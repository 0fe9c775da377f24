using System.Buffers.Binary;
using StratoVirt.Devices;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Virtio;

/// <summary>
/// The virtio-mmio version 2 register window of one device (virtio 1.2, section 4.2). Registers are reached from
/// vCPU threads; queue notifications arrive on per-queue eventfds (bound to the notify register with KVM
/// ioeventfd where available, signalled from here otherwise) that the device's event loop serves.
/// </summary>
public sealed class VirtioMmioTransport : IBusDevice, IVirtioTransport, IDisposable
{
    private readonly VirtioDevice _device;
    private readonly GuestMemory _memory;
    private readonly IInterruptLine _irq;
    private readonly Virtqueue[] _queues;
    private readonly EventFd[] _notify;
    private readonly ulong[] _notifyTokens;
    private uint _status, _deviceFeaturesSel, _driverFeaturesSel, _queueSel, _configGeneration;
    private int _interruptStatus;
    private ulong _driverFeatures;
    private bool _failed;

    public VirtioMmioTransport(VirtioDevice device, GuestMemory memory, IInterruptLine irq)
    {
        _device = device;
        _memory = memory;
        _irq = irq;
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

    public uint Status => Volatile.Read(ref _status);

    /// <summary>Starts serving the queue eventfds on the device's loop.</summary>
    public void Attach()
    {
        for (int i = 0; i < _notify.Length; i++)
        {
            int index = i;
            _notifyTokens[i] = _device.Loop.Add(_notify[i].Fd, Libc.EPOLLIN, _ => OnNotify(index));
        }
    }

    private void OnNotify(int index)
    {
        _notify[index].Drain();
        lock (_device.Gate)
        {
            // A queue the driver left unready has nothing to serve (activation looks at every queue once).
            if (!_device.Active || !_queues[index].Active) return;
            try { _device.ProcessQueue(index); }
            catch (Exception e) { FailLocked(Describe(e)); }
        }
    }

    /// <summary>The reason a device stops: a guest's misprogramming is named as it is; anything else the device
    /// threw (a host-side failure, a defect) also names its type, since it is not the guest's doing.</summary>
    internal static string Describe(Exception e) =>
        e is VirtqueueException or StratoVirt.Memory.GuestMemoryException ? e.Message : $"{e.GetType().Name}: {e.Message}";

    public void Read(ulong offset, Span<byte> data)
    {
        if (offset >= VirtioMmioRegister.Config)
        {
            lock (_device.Gate)
            {
                try { _device.ReadConfig((uint)(offset - VirtioMmioRegister.Config), data); }
                catch (Exception e)
                {
                    data.Fill(0xff);
                    FailLocked($"reading its configuration space: {Describe(e)}");
                }
            }
            return;
        }
        data.Clear(); // registers are 32-bit; other widths read as zero
        if (data.Length == 4 && offset % 4 == 0) BinaryPrimitives.WriteUInt32LittleEndian(data, ReadRegister((uint)offset));
    }

    private uint ReadRegister(uint offset)
    {
        lock (_device.Gate)
        {
            Virtqueue? q = _queueSel < _queues.Length ? _queues[_queueSel] : null;
            return offset switch
            {
                VirtioMmioRegister.MagicValue => VirtioMmioRegister.Magic,
                VirtioMmioRegister.Version => 2,
                VirtioMmioRegister.DeviceId => _device.DeviceId,
                VirtioMmioRegister.VendorId => 0,
                VirtioMmioRegister.DeviceFeatures => _deviceFeaturesSel switch
                {
                    0 => (uint)_device.OfferedFeatures,
                    1 => (uint)(_device.OfferedFeatures >> 32),
                    _ => 0,
                },
                VirtioMmioRegister.QueueNumMax => q?.MaxSize ?? 0u,
                VirtioMmioRegister.QueueReady => q is { Ready: true } ? 1u : 0u,
                VirtioMmioRegister.InterruptStatus => (uint)Volatile.Read(ref _interruptStatus),
                VirtioMmioRegister.Status => _status,
                VirtioMmioRegister.ConfigGeneration => _configGeneration,
                _ => 0,
            };
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset >= VirtioMmioRegister.Config)
        {
            lock (_device.Gate)
            {
                try { _device.WriteConfig((uint)(offset - VirtioMmioRegister.Config), data); }
                catch (Exception e) { FailLocked($"writing its configuration space: {Describe(e)}"); }
            }
            return;
        }
        if (data.Length != 4 || offset % 4 != 0) return; // registers are 32-bit; anything else is ignored
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(data);
        if (offset == VirtioMmioRegister.QueueNotify)
        {
            // Reached only when KVM did not take the write (no ioeventfd, or a value no queue matches).
            if (value < _notify.Length && !KernelNotify) _notify[value].Signal();
            return;
        }
        lock (_device.Gate) WriteRegister((uint)offset, value);
    }

    private void WriteRegister(uint offset, uint value)
    {
        bool configurable = (_status & (VirtioStatus.DriverOk | VirtioStatus.Failed)) == 0 && !_failed;
        Virtqueue? q = _queueSel < _queues.Length && configurable ? _queues[_queueSel] : null;
        switch (offset)
        {
            case VirtioMmioRegister.DeviceFeaturesSel: _deviceFeaturesSel = value; break;
            case VirtioMmioRegister.DriverFeaturesSel: _driverFeaturesSel = value; break;
            case VirtioMmioRegister.DriverFeatures when (_status & VirtioStatus.FeaturesOk) == 0:
                if (_driverFeaturesSel == 0) _driverFeatures = (_driverFeatures & ~0xFFFF_FFFFUL) | value;
                else if (_driverFeaturesSel == 1) _driverFeatures = (_driverFeatures & 0xFFFF_FFFFUL) | ((ulong)value << 32);
                break;
            case VirtioMmioRegister.QueueSel: _queueSel = value; break;
            case VirtioMmioRegister.QueueNum when q is { Ready: false }: q.Size = (ushort)Math.Min(value, ushort.MaxValue); break;
            case VirtioMmioRegister.QueueReady when q is not null: q.Ready = (value & 1) != 0; break;
            case VirtioMmioRegister.QueueDescLow when q is { Ready: false }: q.DescTable = Low(q.DescTable, value); break;
            case VirtioMmioRegister.QueueDescHigh when q is { Ready: false }: q.DescTable = High(q.DescTable, value); break;
            case VirtioMmioRegister.QueueDriverLow when q is { Ready: false }: q.AvailRing = Low(q.AvailRing, value); break;
            case VirtioMmioRegister.QueueDriverHigh when q is { Ready: false }: q.AvailRing = High(q.AvailRing, value); break;
            case VirtioMmioRegister.QueueDeviceLow when q is { Ready: false }: q.UsedRing = Low(q.UsedRing, value); break;
            case VirtioMmioRegister.QueueDeviceHigh when q is { Ready: false }: q.UsedRing = High(q.UsedRing, value); break;
            case VirtioMmioRegister.InterruptAck: Interlocked.And(ref _interruptStatus, ~(int)value); break;
            case VirtioMmioRegister.Status: WriteStatus(value); break;
        }

        static ulong Low(ulong old, uint v) => (old & ~0xFFFF_FFFFUL) | v;
        static ulong High(ulong old, uint v) => (old & 0xFFFF_FFFFUL) | ((ulong)v << 32);
    }

    private void WriteStatus(uint value)
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

    private void ActivateLocked()
    {
        try
        {
            foreach (var q in _queues)
                if (q.Ready) q.Activate(_memory, _driverFeatures);
            _device.Activate(this, _memory, _queues, _driverFeatures);
        }
        catch (Exception e)
        {
            FailLocked(Describe(e));
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
        _deviceFeaturesSel = _driverFeaturesSel = _queueSel = 0;
        Volatile.Write(ref _interruptStatus, 0);
    }

    public void SignalUsed()
    {
        Interlocked.Or(ref _interruptStatus, (int)VirtioMmioRegister.UsedBufferInterrupt);
        _irq.Pulse();
    }

    public void SignalConfigChange()
    {
        Interlocked.Increment(ref _configGeneration);
        Interlocked.Or(ref _interruptStatus, (int)VirtioMmioRegister.ConfigChangeInterrupt);
        _irq.Pulse();
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

    /// <summary>Stops the device's host side; a device that fails even to stop is logged, and the transport's
    /// state (status, queues) still goes back as the driver asked.</summary>
    private void DeactivateDevice()
    {
        try { _device.Deactivate(); }
        catch (Exception e) { Log.Warn($"virtio {_device.Id}: stopping the device failed: {Describe(e)}"); }
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
