using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices.Block;

/// <summary>A -drive: a raw image and how to open it.</summary>
public sealed record DriveConfig(string Id, string Path, bool ReadOnly, bool Direct);

/// <summary>-device virtio-blk-device on the image of a -drive.</summary>
public sealed record BlockDeviceConfig(string Id, string Path, bool ReadOnly, bool Direct, string? Serial)
    : VirtioDeviceConfig(Id)
{
    private static readonly VirtioBackendOption Drive = new("-drive", null)
    {
        Parameters = ["id", "file", "readonly", "direct", "aio", "format", "if", "discard", "detect-zeroes",
            "throttling.iops-total", "media", "unit", "l2-cache-size", "refcount-cache-size"],
        Parse = ParseDrive,
    };

    public static readonly VirtioDeviceType Type = new("virtio-blk", VirtioSlotClass.Block)
    {
        Drivers = [new("virtio-blk-device", ["drive", "serial", "iothread", "bootindex", "num-queues", "queue-size"], ParseDevice)],
        Backends = [Drive],
        HotplugMatch = "blk",
        Usage =
        [
            "-drive id=<d>,file=<raw image>[,readonly=on|off][,direct=on|off][,aio=...]",
            "-device virtio-blk-device,drive=<d>,id=<id>[,serial=<s>][,iothread=<t>]",
        ],
    };

    public override VirtioDeviceType DeviceType => Type;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine) =>
        new VirtioBlock(Path, ReadOnly, Direct, Serial) { Id = Id };

    private static DriveConfig ParseDrive(OptionValue v, string id)
    {
        string file = v.Get("file") is { Length: > 0 } f ? f : throw new UsageException($"option -drive: drive '{id}' needs file=");
        if (v.Get("format") is { } format && format != "raw")
            throw new UsageException($"option -drive: drive '{id}': format={format} is not supported by the microvm (raw only)");
        if (v.Get("if") is { } iface && iface != "none")
            throw new UsageException($"option -drive: drive '{id}': if={iface} is not supported by the microvm");
        if (v.Get("media") is { } media && media != "disk")
            throw new UsageException($"option -drive: drive '{id}': media={media} is not supported by the microvm");
        if (v.Get("aio") is { } aio && aio is not ("native" or "io_uring" or "threads" or "off"))
            throw new UsageException($"option -drive: drive '{id}': aio={aio} is not one of native, io_uring, threads, off");
        return new DriveConfig(id, file, v.GetBool("readonly", false), v.GetBool("direct", true));
    }

    private static BlockDeviceConfig ParseDevice(OptionValue v, IDeviceOptionContext context)
    {
        var drive = context.Backend<DriveConfig>(v, "drive", "-drive");
        string? serial = v.Get("serial");
        if (serial is { Length: > 20 })
            throw new UsageException($"option -device: virtio-blk '{context.DeviceId(v)}': serial= is longer than 20 characters");
        return new BlockDeviceConfig(context.DeviceId(v), drive.Path, drive.ReadOnly, drive.Direct, serial) {
            IoThread = v.Get("iothread"), BootIndex = v.GetInt("bootindex", 0, ushort.MaxValue),
        };
    }
}
