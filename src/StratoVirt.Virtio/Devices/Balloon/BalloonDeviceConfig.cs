using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices.Balloon;

/// <summary>-device virtio-balloon-device: the features it offers (QMP balloon drives it).</summary>
public sealed record BalloonDeviceConfig(string Id, bool DeflateOnOom, bool FreePageReporting) : VirtioDeviceConfig(Id)
{
    public static readonly VirtioDeviceType Type = new("virtio-balloon", VirtioSlotClass.Other)
    {
        Drivers =
        [
            new("virtio-balloon-device", ["deflate-on-oom", "free-page-reporting", "auto-balloon", "membuf-percent", "monitor-interval"],
                ParseDevice),
        ],
        Usage = ["-device virtio-balloon-device[,deflate-on-oom=on|off][,free-page-reporting=on|off]"],
    };

    public override VirtioDeviceType DeviceType => Type;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine) =>
        new VirtioBalloon(machine.RamSize, DeflateOnOom, FreePageReporting) { Id = Id };

    private static BalloonDeviceConfig ParseDevice(OptionValue v, IDeviceOptionContext context)
    {
        if (v.GetBool("auto-balloon", false))
            throw new UsageException("option -device: virtio-balloon auto-balloon is not supported by this build");
        if (context.HasDevice<BalloonDeviceConfig>()) throw new UsageException("option -device: only one virtio-balloon-device is supported");
        return new BalloonDeviceConfig(context.DeviceId(v), v.GetBool("deflate-on-oom", false), v.GetBool("free-page-reporting", false));
    }
}
