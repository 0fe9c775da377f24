using StratoVirt.Devices.State;

namespace StratoVirt.Virtio.Devices.Console;

/// <summary>What a virtio-console device needs to continue after a restore: the features its driver accepted, and
/// the chardev it served (checked: the chardev and its bytes in flight belong to the machine).</summary>
public sealed record ConsoleState(ulong Features, string ChardevId)
{
    public const string Name = "virtio-console";
    public const int Version = 1;

    public void Write(StateWriter writer)
    {
        writer.WriteUInt64(Features);
        writer.WriteString(ChardevId);
    }

    public static ConsoleState Read(StateReader reader) =>
        new(reader.ReadUInt64(), reader.ReadString() ?? throw new StateException($"{reader.Name} state: no chardev id"));
}
