using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices;

/// <summary>The -chardev a vhost-user device names: its id and the socket path of the backend the VMM connects to.</summary>
public sealed record VhostUserBackend(string Chardev, string Path)
{
    /// <summary>The chardev= of <paramref name="v"/>, which must be a unix socket chardev. The VMM connects to it as
    /// a client whatever server,nowait says, as upstream does (Kata writes server,nowait and starts virtiofsd first).</summary>
    public static VhostUserBackend Parse(OptionValue v, IDeviceOptionContext context, string driver)
    {
        var chardev = context.Backend<ChardevConfig>(v, "chardev", "-chardev");
        return chardev is ChardevConfig.UnixSocket socket ? new VhostUserBackend(socket.Id, socket.Path)
            : throw new UsageException($"option -device: {driver} needs a unix socket chardev (-chardev socket,id={chardev.Id},path=<backend socket>,server,nowait)");
    }

    /// <summary>Whether <paramref name="size"/> is a power of two from 2 to 1024.</summary>
    public static bool ValidQueueSize(int size) => size is >= 2 and <= 1024 && (size & (size - 1)) == 0;

    /// <summary>queue-size=: a power of two from 2 to 1024.</summary>
    public static ushort QueueSize(OptionValue v, string driver, ushort defaultSize)
    {
        int size = v.GetInt("queue-size", 2, 1024) ?? defaultSize;
        return ValidQueueSize(size) ? (ushort)size
            : throw new UsageException($"option -device: {driver} queue-size={size} is not a power of two");
    }
}
