using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Devices.Block;

/// <summary>What a virtio-blk device needs to continue after a restore: the features its driver accepted, the
/// medium it held and the GET_ID serial, which hotplug may have changed. A restore opens no image: the device must
/// hold a medium of the same size and mode, or none; the file may be another (a template's clone has its own copy).
/// </summary>
public sealed record BlockState(ulong Features, BlockMedium? Medium, string? Serial)
{
    public const string Name = "virtio-blk";
    public const int Version = 2;

    public void Write(StateWriter writer)
    {
        writer.WriteUInt64(Features);
        writer.WriteBool(Medium is not null);
        writer.WriteUInt64(Medium?.Bytes ?? 0);
        writer.WriteBool(Medium?.ReadOnly ?? false);
        writer.WriteString(Serial);
    }

    public static BlockState Read(StateReader reader)
    {
        ulong features = reader.ReadUInt64();
        bool present = reader.ReadBool();
        var medium = new BlockMedium(reader.ReadUInt64(), reader.ReadBool());
        return new(features, present ? medium : null, reader.ReadString());
    }
}

/// <summary>What the guest sees of a medium: its size (a whole number of sectors) and whether it refuses writes.</summary>
public readonly record struct BlockMedium(ulong Bytes, bool ReadOnly)
{
    public static string Describe(BlockMedium? medium) =>
        medium is { } m ? $"a {(m.ReadOnly ? "read-only" : "read-write")} medium of {m.Bytes} bytes" : "no medium";
}
