using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;

namespace StratoVirt.Machine;

/// <summary>
/// The microVM's hotplug model, as upstream's: a machine with a QMP monitor reserves the first virtio-mmio slots
/// for 4 virtio-blk and 2 virtio-net devices that always exist. Cold-plugged drives and taps fill them in order;
/// the rest start empty (no medium, link down). Hotplug puts a backend stored by blockdev-add or netdev_add into
/// an empty one; unplug empties it again and closes the backend. The guest never sees a device come or go, only
/// a disk's capacity or a link's state change.
/// </summary>
/// <remarks>Used only from the QMP server's loop; the devices guard the swap against their own queue processing.</remarks>
public sealed class ReplaceableSlots : IHotplug, IDisposable
{
    public const int BlockSlots = 4, NetSlots = 2;

    private readonly Slot<VirtioBlock>[] _blk;
    private readonly Slot<VirtioNet>[] _net;
    private readonly HashSet<string> _otherIds;
    private readonly HotplugBackends _backends;
    private readonly Action<string> _deviceDeleted;

    /// <summary>A slot's device, the id of what is plugged in (null: empty) and the name of its hotplugged
    /// backend (null for a cold-plugged one).</summary>
    private sealed class Slot<T>(T device, string? id) where T : VirtioDevice
    {
        public T Device { get; } = device;
        public string? Id { get; set; } = id;
        public string? Backend { get; set; }
    }

    /// <summary>
    /// Puts the cold-plugged <paramref name="blocks"/> and <paramref name="nets"/> into the first slots of their
    /// kind and fills the rest with empty devices run on <paramref name="loop"/>. <paramref name="otherIds"/> are
    /// the machine's other device ids (not reusable by device_add); <paramref name="deviceDeleted"/> sends
    /// DEVICE_DELETED for an id.
    /// </summary>
    public ReplaceableSlots(IReadOnlyList<VirtioBlock> blocks, IReadOnlyList<VirtioNet> nets, EventLoop loop,
        IEnumerable<string> otherIds, Action<string> deviceDeleted)
    {
        if (blocks.Count > BlockSlots || nets.Count > NetSlots)
            throw new ArgumentException("more cold-plugged devices than replaceable slots");
        _blk = new Slot<VirtioBlock>[BlockSlots];
        _net = new Slot<VirtioNet>[NetSlots];
        for (int i = 0; i < BlockSlots; i++)
            _blk[i] = i < blocks.Count ? new(blocks[i], blocks[i].Id)
                : new(OnLoop(VirtioBlock.Empty($"blk-slot{i}"), loop), null);
        for (int i = 0; i < NetSlots; i++)
            _net[i] = i < nets.Count ? new(nets[i], nets[i].Id)
                : new(OnLoop(new VirtioNet(null) { Id = $"net-slot{i}" }, loop), null);
        _otherIds = new HashSet<string>(otherIds, StringComparer.Ordinal);
        _deviceDeleted = deviceDeleted;
        _backends = new HotplugBackends(name => Array.Find(_blk, s => s.Backend == name)?.Id,
            name => Array.Find(_net, s => s.Backend == name)?.Id, fd => Array.Exists(_net, s => s.Device.BackendFd == fd),
            _ => null); // the microVM stores no chardevs
    }

    private static T OnLoop<T>(T device, EventLoop loop) where T : VirtioDevice
    {
        device.Loop = loop;
        return device;
    }

    /// <summary>Checks a configuration against the slots before anything is opened: at most 4 drives, 2 taps, and
    /// <see cref="VirtioMmioSlots.Capacity"/> slots in all.</summary>
    public static void CheckCapacity(IReadOnlyList<VirtioDeviceConfig> devices)
    {
        int blk = 0, net = 0;
        foreach (var d in devices)
        {
            if (d.Slot == VirtioSlotClass.Block) blk++;
            else if (d.Slot == VirtioSlotClass.Net) net++;
        }
        int others = devices.Count - blk - net, room = VirtioMmioSlots.Capacity - BlockSlots - NetSlots;
        if (blk > BlockSlots)
            throw new MachineConfigException($"{blk} virtio-blk devices requested; the microVM has {BlockSlots} block slots");
        if (net > NetSlots)
            throw new MachineConfigException($"{net} virtio-net devices requested; the microVM has {NetSlots} net slots");
        if (others > room)
            throw new MachineConfigException($"{others} virtio devices besides blk and net requested; with -qmp the " +
                $"microVM keeps {BlockSlots + NetSlots} of its {VirtioMmioSlots.Capacity} slots for hotplug, leaving {room}");
    }

    /// <summary>The slots' devices in slot order: the block slots, then the net slots.</summary>
    public IEnumerable<VirtioDevice> Devices
    {
        get
        {
            var devices = new VirtioDevice[_blk.Length + _net.Length];
            for (int i = 0; i < _blk.Length; i++) devices[i] = _blk[i].Device;
            for (int i = 0; i < _net.Length; i++) devices[_blk.Length + i] = _net[i].Device;
            return devices;
        }
    }

    /// <summary>The id plugged into block slot <paramref name="index"/>, or null.</summary>
    public string? BlockSlotId(int index) => _blk[index].Id;

    public string? NetSlotId(int index) => _net[index].Id;

    public VirtioBlock BlockDevice(int index) => _blk[index].Device;

    public VirtioNet NetDevice(int index) => _net[index].Device;

    public void BlockdevAdd(BlockdevSpec spec) => _backends.BlockdevAdd(spec);

    public void BlockdevDel(string nodeName) => _backends.BlockdevDel(nodeName);

    public void NetdevAdd(NetdevSpec spec) => _backends.NetdevAdd(spec);

    public void NetdevDel(string id) => _backends.NetdevDel(id);

    public void DeviceAdd(DeviceAddSpec spec)
    {
        if (spec.Id.Length == 0) throw new HotplugException("device_add needs a non-empty id");
        if (_otherIds.Contains(spec.Id) || Array.Exists(_blk, s => s.Id == spec.Id) || Array.Exists(_net, s => s.Id == spec.Id))
            throw new HotplugException($"Device id '{spec.Id}' is already in use");
        if (spec.Kind == HotplugKind.VhostUserBlock)
            throw new HotplugException($"{spec.Driver} cannot be hotplugged into the microVM (its slots take virtio-blk and virtio-net; use -machine q35)");
        if (spec.Kind == HotplugKind.Block)
            Plug(_backends.Drive, _blk, spec, "block", (d, image) => d.Insert(image, spec.Serial));
        else
            Plug(_backends.Netdev, _net, spec, "net", (d, tap) => d.Attach(tap, spec.Mac));
    }

    /// <summary>Moves a stored backend into a free slot of its kind.</summary>
    private void Plug<TBackend, TDevice>(Func<string, TBackend> stored, Slot<TDevice>[] slots,
        DeviceAddSpec spec, string kind, Action<TDevice, TBackend> insert) where TDevice : VirtioDevice
    {
        var backend = stored(spec.Backend);
        var slot = FreeSlot(slots, spec.Slot, kind);
        _backends.Release(spec.Backend, spec.Kind);
        insert(slot.Device, backend);
        slot.Id = spec.Id;
        slot.Backend = spec.Backend;
    }

    private static Slot<T> FreeSlot<T>(Slot<T>[] slots, int? index, string kind) where T : VirtioDevice
    {
        if (index is { } i)
        {
            if (i < 0 || i >= slots.Length)
                throw new HotplugException($"Slot {i} is out of range: the microVM has {slots.Length} {kind} slots (0-{slots.Length - 1})");
            if (slots[i].Id is { } used) throw new HotplugException($"The {kind} slot {i} is occupied already by '{used}'");
            return slots[i];
        }
        return Array.Find(slots, s => s.Id is null)
               ?? throw new HotplugException($"All {slots.Length} {kind} slots are occupied");
    }

    public void DeviceDel(string id)
    {
        if (Array.Find(_blk, s => s.Id == id) is { } blk)
        {
            blk.Device.Eject();
            blk.Id = blk.Backend = null;
        }
        else if (Array.Find(_net, s => s.Id == id) is { } net)
        {
            net.Device.Detach();
            net.Id = net.Backend = null;
        }
        else if (_otherIds.Contains(id))
        {
            throw new HotplugException($"Device '{id}' cannot be unplugged from a microVM (only virtio-blk and virtio-net can)");
        }
        else
        {
            throw new HotplugException($"Device '{id}' not found");
        }
        _deviceDeleted(id);
    }

    /// <summary>Closes the stored backends no device uses (the devices belong to the machine).</summary>
    public void Dispose() => _backends.Dispose();
}
