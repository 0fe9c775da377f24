using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Devices.Block;

/// <summary>What a virtio-blk device needs to continue after a restore: the features its driver accepted, the
/// medium it held (a restore opens no image: the device must hold the same one, or none) and the GET_ID serial,
/// which hotplug may have changed.</summary>
public sealed record BlockState(ulong Features, string? MediumPath, string? Serial)
{
    public const string Name = "virtio-blk";
    public const int Version = 1;

    public void Write(StateWriter writer)
    {
        writer.WriteUInt64(Features);
        writer.WriteString(MediumPath);
        writer.WriteString(Serial);
    }

    public static BlockState Read(StateReader reader) => new(reader.ReadUInt64(), reader.ReadString(), reader.ReadString());
}
