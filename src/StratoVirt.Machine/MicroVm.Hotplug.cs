using StratoVirt.Machine.Qmp;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;

namespace StratoVirt.Machine;

/// <summary>Hotplug: with a QMP monitor the microVM keeps replaceable slots (see <see cref="ReplaceableSlots"/>).</summary>
public sealed partial class MicroVm : IQmpHotplug
{
    private ReplaceableSlots? _hotplug;

    /// <summary>Puts the created blk and net devices into the replaceable slots, with empty devices in the rest,
    /// and the other devices after them.</summary>
    private void ReserveHotplugSlots()
    {
        var blocks = _virtioDevices.OfType<VirtioBlock>().ToList();
        var nets = _virtioDevices.OfType<VirtioNet>().ToList();
        var others = _virtioDevices.Where(d => d is not (VirtioBlock or VirtioNet)).ToList();
        _hotplug = new ReplaceableSlots(blocks, nets, _mainLoop, others.Select(d => d.Id), SendDeviceDeleted);
        _virtioDevices.Clear();
        _virtioDevices.AddRange(_hotplug.Devices);
        _virtioDevices.AddRange(others);
    }

    private void SendDeviceDeleted(string id) => _qmp?.SendEvent("DEVICE_DELETED", new DeviceDeletedEventData(id, id),
        QmpHotplugJsonContext.Default.DeviceDeletedEventData);

    private ReplaceableSlots Slots => _hotplug ?? throw new HotplugException("this machine has no hotplug slots (start it with -qmp)");

    void IQmpHotplug.BlockdevAdd(BlockdevSpec spec) => Slots.BlockdevAdd(spec);
    void IQmpHotplug.BlockdevDel(string nodeName) => Slots.BlockdevDel(nodeName);
    void IQmpHotplug.NetdevAdd(NetdevSpec spec) => Slots.NetdevAdd(spec);
    void IQmpHotplug.NetdevDel(string id) => Slots.NetdevDel(id);
    void IQmpHotplug.DeviceAdd(DeviceAddSpec spec) => Slots.DeviceAdd(spec);
    void IQmpHotplug.DeviceDel(string id) => Slots.DeviceDel(id);
}
