using System.Buffers.Binary;
using StratoVirt.Devices;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Transport.Mmio;

/// <summary>
/// The virtio-mmio version 2 register window of one device (virtio 1.2, section 4.2): a register map over the
/// device's <see cref="VirtioCore"/>. Both of the core's events set their InterruptStatus bit (the core does that)
/// and pulse the slot's interrupt line.
/// </summary>
public sealed class VirtioMmioTransport : IBusDevice, IVirtioInterrupts, IDisposable
{
    private readonly VirtioCore _core;
    private readonly IInterruptLine _irq;

    public VirtioMmioTransport(VirtioDevice device, GuestMemory memory, IInterruptLine irq)
    {
        _irq = irq;
        _core = new VirtioCore(device, memory, this);
    }

    public VirtioCore Core => _core;

    public VirtioDevice Device => _core.Device;

    /// <summary>The eventfd of queue <paramref name="index"/>'s notifications, for KVM ioeventfd.</summary>
    public EventFd NotifyEvent(int index) => _core.NotifyEvent(index);

    /// <summary>Whether KVM delivers notify writes straight to the eventfds (set by the machine).</summary>
    public bool KernelNotify
    {
        get => _core.KernelNotify;
        set => _core.KernelNotify = value;
    }

    public uint Status => _core.Status;

    /// <summary>Starts serving the queue eventfds on the device's loop.</summary>
    public void Attach() => _core.Attach();

    void IVirtioInterrupts.QueueUsed(int queue) => _irq.Pulse();

    void IVirtioInterrupts.ConfigChanged() => _irq.Pulse();

    public void Read(ulong offset, Span<byte> data)
    {
        if (offset >= VirtioMmioRegister.Config)
        {
            _core.ReadConfig((uint)(offset - VirtioMmioRegister.Config), data);
            return;
        }
        data.Clear(); // registers are 32-bit; other widths read as zero
        if (data.Length == 4 && offset % 4 == 0) BinaryPrimitives.WriteUInt32LittleEndian(data, ReadRegister((uint)offset));
    }

    private uint ReadRegister(uint offset) => offset switch
    {
        VirtioMmioRegister.MagicValue => VirtioMmioRegister.Magic,
        VirtioMmioRegister.Version => 2,
        VirtioMmioRegister.DeviceId => _core.Device.DeviceId,
        VirtioMmioRegister.VendorId => 0,
        VirtioMmioRegister.DeviceFeatures => _core.DeviceFeatures,
        VirtioMmioRegister.QueueNumMax => _core.QueueSizeMax,
        VirtioMmioRegister.QueueReady => _core.QueueReady ? 1u : 0u,
        VirtioMmioRegister.InterruptStatus => _core.InterruptStatus,
        VirtioMmioRegister.Status => _core.Status,
        VirtioMmioRegister.ConfigGeneration => _core.ConfigGeneration,
        VirtioMmioRegister.ShmLenLow or VirtioMmioRegister.ShmLenHigh
            or VirtioMmioRegister.ShmBaseLow or VirtioMmioRegister.ShmBaseHigh => uint.MaxValue, // no such region
        _ => 0,
    };

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset >= VirtioMmioRegister.Config)
        {
            _core.WriteConfig((uint)(offset - VirtioMmioRegister.Config), data);
            return;
        }
        if (data.Length != 4 || offset % 4 != 0) return; // registers are 32-bit; anything else is ignored
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(data);
        switch ((uint)offset)
        {
            case VirtioMmioRegister.DeviceFeaturesSel: _core.SelectDeviceFeatures(value); break;
            case VirtioMmioRegister.DriverFeaturesSel: _core.SelectDriverFeatures(value); break;
            case VirtioMmioRegister.DriverFeatures: _core.WriteDriverFeatures(value); break;
            case VirtioMmioRegister.QueueSel: _core.SelectQueue(value); break;
            case VirtioMmioRegister.QueueNum: _core.SetQueueSize(value); break;
            case VirtioMmioRegister.QueueReady: _core.SetQueueReady((value & 1) != 0); break;
            case VirtioMmioRegister.QueueDescLow: _core.SetQueueAddress(VirtqueueArea.Descriptors, false, value); break;
            case VirtioMmioRegister.QueueDescHigh: _core.SetQueueAddress(VirtqueueArea.Descriptors, true, value); break;
            case VirtioMmioRegister.QueueDriverLow: _core.SetQueueAddress(VirtqueueArea.Driver, false, value); break;
            case VirtioMmioRegister.QueueDriverHigh: _core.SetQueueAddress(VirtqueueArea.Driver, true, value); break;
            case VirtioMmioRegister.QueueDeviceLow: _core.SetQueueAddress(VirtqueueArea.Device, false, value); break;
            case VirtioMmioRegister.QueueDeviceHigh: _core.SetQueueAddress(VirtqueueArea.Device, true, value); break;
            case VirtioMmioRegister.QueueNotify: _core.Notify(value); break;
            case VirtioMmioRegister.InterruptAck: _core.AcknowledgeInterrupt(value); break;
            case VirtioMmioRegister.Status: _core.WriteStatus(value); break;
        }
    }

    public void Dispose() => _core.Dispose();
}
