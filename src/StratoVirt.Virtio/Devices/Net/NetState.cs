using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Devices.Net;

/// <summary>What a virtio-net device needs to continue after a restore: the features its driver accepted, the MAC
/// address and whether the driver read it (after which hotplug keeps it), and the drop counters. A frame half
/// delivered to mergeable buffers when the state is saved is dropped, and its buffers are given back.</summary>
public sealed record NetState(ulong Features, byte[] Mac, bool MacRead, long RxDropped, long TxDropped)
{
    public const string Name = "virtio-net";
    public const int Version = 1;

    public void Write(StateWriter writer)
    {
        writer.WriteUInt64(Features);
        writer.WriteBytes(Mac);
        writer.WriteBool(MacRead);
        writer.WriteInt64(RxDropped);
        writer.WriteInt64(TxDropped);
    }

    public static NetState Read(StateReader reader) =>
        new(reader.ReadUInt64(), reader.ReadBytes(), reader.ReadBool(), reader.ReadInt64(), reader.ReadInt64());
}
