using StratoVirt.Devices.State;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Machine.Snapshot;

/// <summary>
/// One virtio-mmio slot as a saved-state record ("virtio-slot"): the device the slot holds now (hotplug may have
/// replaced it) and then its transport core. A restore gives the device its record first, then the core, which
/// re-activates a live device on its saved queues.
/// </summary>
public sealed class VirtioSlotStateful(int slot, VirtioMmioTransport transport) : IStateful
{
    public string StateName => "virtio-slot";
    public int StateVersion => 1;

    public void SaveState(StateWriter writer)
    {
        writer.WriteUInt32((uint)slot);
        StateRecord.Capture(transport.Device).WriteTo(writer);
        StateRecord.Capture(transport.Core).WriteTo(writer);
    }

    public void RestoreState(StateReader reader)
    {
        uint saved = reader.ReadUInt32();
        if (saved != slot) throw new StateException($"a record of virtio slot {saved} cannot restore slot {slot}");
        var device = StateRecord.ReadFrom(reader);
        var core = StateRecord.ReadFrom(reader);
        if (device.Name != transport.Device.StateName)
            throw new StateException($"virtio slot {slot} held a {device.Name} device when the snapshot was taken; now it holds {transport.Device.StateName} {transport.Device.Id}");
        device.Restore(transport.Device);
        core.Restore(transport.Core);
    }
}
