using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices.VhostUserBlock;

/// <summary>-device vhost-user-blk-device: a virtio-blk device whose requests a vhost-user backend serves
/// (qemu-storage-daemon's vhost-user-blk export).</summary>
public sealed record VhostUserBlockConfig(string Id, VhostUserBackend Backend, int Queues, ushort QueueSize) : VirtioDeviceConfig(Id)
{
    private const string Driver = "vhost-user-blk-device";

    /// <summary>num-queues at most, and queue-size when not given (the command line's and device_add's).</summary>
    public const int MaxQueues = 16;
    public const ushort DefaultQueueSize = 128;

    public static readonly VirtioDeviceType Type = new("vhost-user-blk", VirtioSlotClass.Other)
    {
        Drivers = [new(Driver, ["chardev", "num-queues", "queue-size"], ParseDevice)],
        Usage = ["-chardev socket,id=<c>,path=<backend socket>,server,nowait  " +
            "-device vhost-user-blk-device,chardev=<c>,id=<id>[,num-queues=<n>][,queue-size=<n>]"],
    };

    public override VirtioDeviceType DeviceType => Type;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine)
    {
        VirtioDeviceResources.RequireSharedMemory(machine, Driver);
        return new VhostUserBlock(Queues, QueueSize, Backend) { Id = Id };
    }

    private static VhostUserBlockConfig ParseDevice(OptionValue v, IDeviceOptionContext context)
    {
        var backend = VhostUserBackend.Parse(v, context, Driver);
        int queues = v.GetInt("num-queues", 1, MaxQueues) ?? 1;
        return new VhostUserBlockConfig(context.DeviceId(v), backend, queues, VhostUserBackend.QueueSize(v, Driver, DefaultQueueSize));
    }
}
