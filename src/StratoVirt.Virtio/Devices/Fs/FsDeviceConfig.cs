using System.Text;
using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices.Fs;

/// <summary>-device vhost-user-fs-device: a virtio-fs device whose requests virtiofsd serves.</summary>
public sealed record FsDeviceConfig(string Id, VhostUserBackend Backend, string Tag, int RequestQueues, ushort QueueSize)
    : VirtioDeviceConfig(Id)
{
    private const string Driver = "vhost-user-fs-device";

    public static readonly VirtioDeviceType Type = new("vhost-user-fs", VirtioSlotClass.Other)
    {
        Drivers = [new(Driver, ["chardev", "tag", "num-request-queues", "queue-size"], ParseDevice)],
        Usage = ["-chardev socket,id=<c>,path=<virtiofsd socket>,server,nowait  " +
            "-device vhost-user-fs-device,chardev=<c>,tag=<tag>,id=<id>[,num-request-queues=<n>][,queue-size=<n>]"],
    };

    public override VirtioDeviceType DeviceType => Type;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine)
    {
        VirtioDeviceResources.RequireSharedMemory(machine, Driver);
        return new VhostUserFs(Tag, RequestQueues, QueueSize, Backend) { Id = Id };
    }

    private static FsDeviceConfig ParseDevice(OptionValue v, IDeviceOptionContext context)
    {
        var backend = VhostUserBackend.Parse(v, context, Driver);
        string tag = v.Get("tag") ?? throw new UsageException($"option -device: {Driver} needs tag=");
        int length = Encoding.UTF8.GetByteCount(tag);
        if (length is 0 or > VhostUserFs.TagCapacity)
            throw new UsageException($"option -device: {Driver} tag= must be 1 to {VhostUserFs.TagCapacity} bytes, not {length}");
        int queues = v.GetInt("num-request-queues", 1, 64) ?? 1;
        return new FsDeviceConfig(context.DeviceId(v), backend, tag, queues, VhostUserBackend.QueueSize(v, Driver, 128));
    }
}
