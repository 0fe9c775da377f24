using System.Buffers.Binary;
using StratoVirt.Devices;
using StratoVirt.Devices.Pci;
using StratoVirt.Memory;
using StratoVirt.Sys;
using static StratoVirt.Virtio.Transport.Pci.VirtioPciRegister;

namespace StratoVirt.Virtio.Transport.Pci;

/// <summary>Binds guest writes of an address to an eventfd in the hypervisor (KVM ioeventfd), so that queue
/// notifications reach the device's loop without an exit to the VMM.</summary>
public interface IDoorbellBinder
{
    void Bind(ulong address, uint length, EventFd fd);

    void Unbind(ulong address, uint length, EventFd fd);
}

/// <summary>
/// A virtio device as a non-transitional virtio-pci function (virtio 1.2, section 4.1): vendor capabilities for
/// the common, notification, ISR and device configuration structures and an MSI-X capability, all in one 64-bit
/// memory BAR, over the device's <see cref="VirtioCore"/>, and the PCI configuration access capability, a window
/// through configuration space into that BAR (for firmware that cannot map it). Interrupts go by MSI-X vector when the guest enabled
/// it, else on INTA# as a level held while the ISR status is non-zero (reading the ISR clears and deasserts it).
/// The call eventfds of queues an external backend serves (vhost, vhost-user) are bound to their MSI-X vector in
/// the hypervisor (<see cref="IIrqfdRoutes"/>) while that vector is deliverable, so the backend interrupts the guest
/// without the VMM; while it is masked (or MSI-X is off) the device's loop relays them, and a masked vector's
/// signal waits in the PBA until the guest unmasks it. The device's own loop raises a vector through that vector's
/// eventfd and route in the same way (see <see cref="MsixTable"/>), so it makes no KVM call per interrupt.
/// Configuration accesses come under the bus's lock; BAR accesses from any vCPU take the core's device lock.
/// </summary>
public sealed class VirtioPciFunction : PciFunction, IBusDevice, IVirtioInterrupts, IDisposable
{
    private readonly VirtioCore _core;
    private readonly IInterruptLine _intx;
    private readonly MsixTable _msix;
    private readonly IDoorbellBinder? _doorbells;
    private readonly IIrqfdRoutes? _irqfds;
    private readonly (uint Gsi, MsiMessage Message)?[] _callRoutes;
    private readonly ushort[] _queueVectors;
    private readonly uint _pbaOffset;
    private readonly Lock _intxGate = new();
    private readonly int _pciCfg;
    private ushort _configVector = NoVector;
    private bool _intxAsserted, _intxDisabled;
    private ulong? _notifyBase;

    public VirtioPciFunction(VirtioDevice device, GuestMemory memory, IInterruptLine intx, IMsiController msi,
        IDoorbellBinder? doorbells, bool multiFunction = false, IIrqfdRoutes? irqfds = null)
        : base(new PciConfigSpace(PciConfigSpace.ConventionalSize, VendorId, (ushort)(DeviceIdBase + device.DeviceId),
            ClassCode(device.DeviceId), Revision, multiFunction))
    {
        _intx = intx;
        _doorbells = doorbells;
        _irqfds = irqfds;
        _callRoutes = new (uint, MsiMessage)?[device.BackendQueues?.Count ?? 0];
        _msix = new MsixTable(device.QueueCount + 1, msi, irqfds);
        _queueVectors = new ushort[device.QueueCount];
        Array.Fill(_queueVectors, NoVector);
        _pbaOffset = MsixTableOffset + AlignPage((uint)_msix.TableSize);
        BarSize = NextPowerOfTwo(_pbaOffset + AlignPage((uint)_msix.PbaSize));

        Config.SetU16(PciConfigSpace.SubsystemVendorId, SubsystemVendorId);
        Config.SetU16(PciConfigSpace.SubsystemId, SubsystemId);
        Config.SetU8(PciConfigSpace.InterruptPin, 1); // INTA#
        Config.AddBar(Bar, PciBarKind.Memory64, BarSize);
        AddVirtioCapability(CommonCfg, CommonOffset, CommonCfgLength);
        int notify = AddVirtioCapability(NotifyCfg, NotifyOffset, (uint)device.QueueCount * NotifyOffMultiplier,
            NotifyCapabilityLength);
        Config.SetU32(notify + 16, NotifyOffMultiplier);
        AddVirtioCapability(IsrCfg, IsrOffset, 1);
        AddVirtioCapability(DeviceCfg, DeviceOffset, PageSize);
        // The driver chooses bar, offset and length, then reads or writes pci_cfg_data.
        _pciCfg = AddVirtioCapability(PciCfg, 0, 0, PciCfgCapabilityLength);
        Config.SetWritableU8(_pciCfg + 4, 0xFF);
        Config.SetWritableU32(_pciCfg + 8, uint.MaxValue);
        Config.SetWritableU32(_pciCfg + 12, uint.MaxValue);
        Config.SetWritableU32(_pciCfg + PciCfgData, uint.MaxValue);
        _msix.AddCapability(Config, Bar, MsixTableOffset, _pbaOffset);
        _core = new VirtioCore(device, memory, this);
    }

    public override string Name => _core.Device.Id;

    public override string QdevId => _core.Device.Id;

    public VirtioCore Core => _core;

    public VirtioDevice Device => _core.Device;

    /// <summary>Bytes of the memory BAR: the four structures, the MSI-X table and its PBA, as a power of two.</summary>
    public ulong BarSize { get; }

    /// <summary>Starts serving the queue eventfds on the device's loop.</summary>
    public void Attach() => _core.Attach();

    public override IBusDevice? BarRegion(int index) => index == Bar ? this : null;

    private int AddVirtioCapability(byte type, uint offset, uint length, int capabilityLength = CapabilityLength)
    {
        int at = Config.AddCapability(VendorCapability, capabilityLength);
        Config.SetU8(at + 2, (byte)capabilityLength);
        Config.SetU8(at + 3, type);
        Config.SetU8(at + 4, Bar);
        Config.SetU32(at + 8, offset);
        Config.SetU32(at + 12, length);
        return at;
    }

    // ---- configuration space ----

    /// <summary>pci_cfg_data's offset in the PCI_CFG capability.</summary>
    private const int PciCfgData = 16;

    private bool TouchesPciCfgData(int offset, int length) =>
        offset < _pciCfg + PciCfgData + 4 && offset + length > _pciCfg + PciCfgData;

    /// <summary>The BAR access the PCI_CFG capability's fields describe: its offset and length, or null when they
    /// name another BAR, a length other than 1, 2 or 4, an offset not aligned to it, or a range past the BAR (the
    /// access is then ignored, and a read of the window returns what it held).</summary>
    private (ulong Offset, int Length)? PciCfgAccess()
    {
        uint offset = Config.GetU32(_pciCfg + 8), length = Config.GetU32(_pciCfg + 12);
        if (Config.GetU8(_pciCfg + 4) != Bar || length is not (1 or 2 or 4) || offset % length != 0
            || offset + (ulong)length > BarSize)
            return null;
        return (offset, (int)length);
    }

    public override void ReadConfig(int offset, Span<byte> data)
    {
        if (TouchesPciCfgData(offset, data.Length) && PciCfgAccess() is { } access)
        {
            Span<byte> window = stackalloc byte[4];
            window.Clear();
            Read(access.Offset, window[..access.Length]);
            Config.SetU32(_pciCfg + PciCfgData, BinaryPrimitives.ReadUInt32LittleEndian(window));
        }
        base.ReadConfig(offset, data);
    }

    public override void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        base.WriteConfig(offset, data);
        if (TouchesPciCfgData(offset, data.Length) && PciCfgAccess() is { } access)
        {
            Span<byte> window = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(window, Config.GetU32(_pciCfg + PciCfgData));
            Write(access.Offset, window[..access.Length]);
        }
        if (_msix.ControlTouched(offset, data.Length))
        {
            _msix.ControlWritten(Config);
            UpdateIntx();
            UpdateCallRoutes();
        }
        if (offset <= PciConfigSpace.Command + 1 && offset + data.Length > PciConfigSpace.Command + 1)
        {
            lock (_intxGate) _intxDisabled = (Config.CommandValue & PciConfigSpace.CommandInterruptDisable) != 0;
            UpdateIntx();
        }
    }

    /// <summary>A function reset (the machine's reset): the device is reset as by a driver writing status 0 (its
    /// queues and any vhost or vhost-user backend stopped, the call eventfds unbound), then MSI-X goes back to off
    /// with every vector masked, INTx to enabled and deasserted, and the configuration space to power-on (command
    /// 0: the bus unmaps the BAR and its queue notifications next).</summary>
    public override void Reset()
    {
        WriteStatus(0);
        base.Reset();
        _msix.Reset();
        lock (_intxGate) _intxDisabled = false;
        UpdateIntx();
    }

    /// <summary>Follows the BAR with the queues' notification addresses in the hypervisor.</summary>
    public override void BarMapped(int index, ulong? address)
    {
        if (index != Bar || _doorbells is null) return;
        try
        {
            if (_notifyBase is { } old)
                for (int q = 0; q < _queueVectors.Length; q++) _doorbells.Unbind(NotifyAddress(old, q), 2, _core.NotifyEvent(q));
            _notifyBase = null;
            if (address is not { } bar) return;
            for (int q = 0; q < _queueVectors.Length; q++) _doorbells.Bind(NotifyAddress(bar, q), 2, _core.NotifyEvent(q));
            _notifyBase = bar;
        }
        catch (SysException e)
        {
            // Notifications still arrive as exits (see Write), only slower.
            Log.Warn($"virtio-pci {Name}: queue notifications at 0x{address ?? 0:x} are not bound in KVM: {e.Message}");
        }
    }

    private static ulong NotifyAddress(ulong bar, int queue) => bar + NotifyOffset + (ulong)queue * NotifyOffMultiplier;

    // ---- the BAR ----

    public void Read(ulong offset, Span<byte> data)
    {
        switch (Region(offset, out ulong at))
        {
            case CommonOffset:
                data.Clear();
                if (ReadCommon((int)at, data.Length) is { } value)
                    for (int i = 0; i < data.Length; i++) data[i] = (byte)(value >> (8 * i));
                break;
            case IsrOffset:
                data.Clear();
                if (at == 0) data[0] = (byte)TakeIsr();
                break;
            case DeviceOffset:
                _core.ReadConfig((uint)at, data);
                break;
            case MsixTableOffset:
                if (offset < _pbaOffset) _msix.ReadTable(offset - MsixTableOffset, data);
                else _msix.ReadPba(offset - _pbaOffset, data);
                break;
            default:
                data.Clear();
                break;
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        switch (Region(offset, out ulong at))
        {
            case CommonOffset:
                if (data.Length is 1 or 2 or 4 or 8) WriteCommon((int)at, data);
                break;
            case DeviceOffset:
                _core.WriteConfig((uint)at, data);
                break;
            case NotifyOffset:
                // A write KVM did not take (no ioeventfd, or another width): the address names the queue.
                if (at % NotifyOffMultiplier == 0 && at / NotifyOffMultiplier < (ulong)_queueVectors.Length)
                    _core.Notify((uint)(at / NotifyOffMultiplier));
                break;
            case MsixTableOffset:
                if (offset >= _pbaOffset) break; // the PBA is read-only
                _msix.WriteTable(offset - MsixTableOffset, data);
                UpdateCallRoutes();
                break;
        }
    }

    /// <summary>Which structure's page <paramref name="offset"/> falls in (the MSI-X table and PBA share one
    /// case), and the offset within it; an access crossing a page is nobody's.</summary>
    private uint Region(ulong offset, out ulong at)
    {
        uint page = (uint)(offset & ~(ulong)(PageSize - 1));
        at = offset - page;
        if (offset >= MsixTableOffset && offset < _pbaOffset + PageSize) return MsixTableOffset;
        return page <= NotifyOffset ? page : uint.MaxValue;
    }

    // ---- the common configuration structure ----

    private ulong? ReadCommon(int offset, int length)
    {
        uint queue = _core.SelectedQueue;
        bool exists = queue < (uint)_queueVectors.Length;
        switch (offset, length)
        {
            case (DeviceFeatureSelect, 4): return _core.FeatureSelects.Device;
            case (DeviceFeature, 4): return _core.DeviceFeatures;
            case (DriverFeatureSelect, 4): return _core.FeatureSelects.Driver;
            case (DriverFeature, 4): return _core.DriverFeatures;
            case (ConfigMsixVector, 2): return _configVector;
            case (NumQueues, 2): return (ulong)_queueVectors.Length;
            case (DeviceStatus, 1): return (byte)_core.Status;
            case (ConfigGeneration, 1): return (byte)_core.ConfigGeneration;
            case (QueueSelect, 2): return (ushort)queue;
            case (QueueSize, 2): return _core.QueueSize;
            case (QueueMsixVector, 2): return exists ? _queueVectors[queue] : NoVector;
            case (QueueEnable, 2): return _core.QueueReady ? 1UL : 0;
            case (QueueNotifyOff, 2): return exists ? queue : 0;
        }
        if (!AddressField(offset, length, out var area, out bool? high)) return null;
        ulong address = _core.QueueAddress(area);
        return high switch { null => address, false => (uint)address, true => address >> 32 };
    }

    private void WriteCommon(int offset, ReadOnlySpan<byte> data)
    {
        Span<byte> wide = stackalloc byte[8];
        wide.Clear();
        data.CopyTo(wide);
        ulong value = BinaryPrimitives.ReadUInt64LittleEndian(wide);
        switch (offset, data.Length)
        {
            case (DeviceFeatureSelect, 4): _core.SelectDeviceFeatures((uint)value); return;
            case (DriverFeatureSelect, 4): _core.SelectDriverFeatures((uint)value); return;
            case (DriverFeature, 4): _core.WriteDriverFeatures((uint)value); return;
            case (ConfigMsixVector, 2): _configVector = Vector((ushort)value); return;
            case (DeviceStatus, 1): WriteStatus((byte)value); return;
            case (QueueSelect, 2): _core.SelectQueue((ushort)value); return;
            case (QueueSize, 2): _core.SetQueueSize((ushort)value); return;
            case (QueueMsixVector, 2):
                if (_core.SelectedQueue is var q && q < (uint)_queueVectors.Length) _queueVectors[q] = Vector((ushort)value);
                UpdateCallRoutes();
                return;
            case (QueueEnable, 2):
                if (value == 1) _core.SetQueueReady(true); // the driver never writes 0 (virtio 1.2, 4.1.4.3.2)
                return;
        }
        if (!AddressField(offset, data.Length, out var area, out bool? half)) return;
        if (half != true) _core.SetQueueAddress(area, false, (uint)value);
        if (half != false) _core.SetQueueAddress(area, true, half == true ? (uint)value : (uint)(value >> 32));
    }

    /// <summary>queue_desc, queue_driver and queue_device: 64-bit fields read and written whole or as two 32-bit
    /// halves (<paramref name="high"/> null for the whole field).</summary>
    private static bool AddressField(int offset, int length, out VirtqueueArea area, out bool? high)
    {
        area = default;
        high = null;
        if (offset < QueueDesc || offset >= QueueDevice + 8) return false;
        area = (VirtqueueArea)((offset - QueueDesc) / 8);
        int within = (offset - QueueDesc) % 8;
        if (length == 8 && within == 0) return true;
        if (length != 4 || within % 4 != 0) return false;
        high = within == 4;
        return true;
    }

    /// <summary>A vector the table has, else NO_VECTOR, which the driver reads back as a refusal.</summary>
    private ushort Vector(ushort value) => value < _msix.Vectors ? value : NoVector;

    private void WriteStatus(byte value)
    {
        _core.WriteStatus(value);
        if (value != 0) return;
        // A reset returns the vectors to "none" and clears the ISR, so the line goes down.
        _configVector = NoVector;
        Array.Fill(_queueVectors, NoVector);
        UpdateIntx();
        UpdateCallRoutes();
    }

    /// <summary>Binds each backend queue's call eventfd to its vector's message while that is deliverable, and
    /// hands it back to the device's loop otherwise (the order keeps every signal: see
    /// <see cref="VirtioDevice.SetBackendCallBound"/>). A host that cannot bind leaves the loop relaying it.</summary>
    private void UpdateCallRoutes()
    {
        if (_irqfds is null || _callRoutes.Length == 0) return;
        var queues = Device.BackendQueues!;
        lock (Device.Gate)
        {
            for (int q = 0; q < _callRoutes.Length; q++)
            {
                var wanted = _msix.Deliverable(_queueVectors[q]);
                var current = _callRoutes[q];
                if (wanted == current?.Message) continue;
                try
                {
                    if (current is { } c && wanted is { } retarget)
                    {
                        _irqfds.Retarget(c.Gsi, retarget);
                        _callRoutes[q] = (c.Gsi, retarget);
                        continue;
                    }
                    if (current is { } old)
                    {
                        _callRoutes[q] = null;
                        _irqfds.Unbind(queues.Call(q), old.Gsi);
                        Device.SetBackendCallBound(q, false);
                    }
                    if (wanted is not { } message) continue;
                    Device.SetBackendCallBound(q, true);
                    _callRoutes[q] = (_irqfds.Bind(queues.Call(q), message), message);
                }
                catch (SysException e)
                {
                    Log.Warn($"virtio-pci {Name}: queue {q}'s call eventfd and its MSI-X vector: {e.Message}");
                    if (_callRoutes[q] is null) Device.SetBackendCallBound(q, false);
                }
            }
        }
    }

    // ---- interrupts ----

    void IVirtioInterrupts.QueueUsed(int queue) => Raise((uint)queue < (uint)_queueVectors.Length ? _queueVectors[queue] : NoVector);

    void IVirtioInterrupts.ConfigChanged() => Raise(_configVector);

    private void Raise(ushort vector)
    {
        if (_msix.Enabled)
        {
            if (vector != NoVector) _msix.Raise(vector);
            return;
        }
        UpdateIntx();
    }

    private uint TakeIsr()
    {
        lock (_intxGate)
        {
            uint isr = _core.TakeInterruptStatus();
            SetIntxLocked(false);
            return isr;
        }
    }

    /// <summary>INTA# is asserted while the ISR status has a bit set, MSI-X is off and the command register lets
    /// the function interrupt.</summary>
    private void UpdateIntx()
    {
        lock (_intxGate) SetIntxLocked(_core.InterruptStatus != 0 && !_intxDisabled && !_msix.Enabled);
    }

    private void SetIntxLocked(bool asserted)
    {
        if (asserted == _intxAsserted) return;
        _intxAsserted = asserted;
        _intx.SetLevel(asserted);
    }

    private static uint AlignPage(uint size) => (size + PageSize - 1) & ~(PageSize - 1);

    private static ulong NextPowerOfTwo(ulong size) => size <= 1 ? 1 : 1UL << (64 - System.Numerics.BitOperations.LeadingZeroCount(size - 1));

    public void Dispose()
    {
        _core.Dispose();
        _msix.Dispose();
    }
}
