using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Devices.Balloon;

/// <summary>What a virtio-balloon device needs to continue after a restore: the features its driver accepted, the
/// host's target and the driver's actual (in 4 KiB pages), and the features it was created to offer (checked:
/// they decide its queues).</summary>
public sealed record BalloonState(ulong Features, uint TargetPages, uint ActualPages, bool DeflateOnOom, bool FreePageReporting)
{
    public const string Name = "virtio-balloon";
    public const int Version = 1;

    public void Write(StateWriter writer)
    {
        writer.WriteUInt64(Features);
        writer.WriteUInt32(TargetPages);
        writer.WriteUInt32(ActualPages);
        writer.WriteBool(DeflateOnOom);
        writer.WriteBool(FreePageReporting);
    }

    public static BalloonState Read(StateReader reader) =>
        new(reader.ReadUInt64(), reader.ReadUInt32(), reader.ReadUInt32(), reader.ReadBool(), reader.ReadBool());
}
