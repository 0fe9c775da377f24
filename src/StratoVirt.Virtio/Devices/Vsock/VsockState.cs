using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Devices.Vsock;

/// <summary>What a vsock device needs to continue after a restore: the features its driver accepted, and its CID
/// and socket path (checked against the device's). Connections are host sockets and not part of it: a restored
/// device has none.</summary>
public sealed record VsockState(ulong Features, ulong GuestCid, string UdsPath)
{
    public const string Name = "vhost-vsock";
    public const int Version = 1;

    public void Write(StateWriter writer)
    {
        writer.WriteUInt64(Features);
        writer.WriteUInt64(GuestCid);
        writer.WriteString(UdsPath);
    }

    public static VsockState Read(StateReader reader) =>
        new(reader.ReadUInt64(), reader.ReadUInt64(), reader.ReadString() ?? throw new StateException($"{reader.Name} state: no socket path"));
}
