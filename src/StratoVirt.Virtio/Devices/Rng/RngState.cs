using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Devices.Rng;

/// <summary>What a virtio-rng device needs to continue after a restore: the features its driver accepted, and the
/// entropy source it read (checked against the one it has).</summary>
public sealed record RngState(ulong Features, string SourcePath)
{
    public const string Name = "virtio-rng";
    public const int Version = 1;

    public void Write(StateWriter writer)
    {
        writer.WriteUInt64(Features);
        writer.WriteString(SourcePath);
    }

    public static RngState Read(StateReader reader) =>
        new(reader.ReadUInt64(), reader.ReadString() ?? throw new StateException($"{reader.Name} state: no source path"));
}
