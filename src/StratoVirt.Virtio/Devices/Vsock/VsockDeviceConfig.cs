using System.Globalization;
using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices.Vsock;

/// <summary>-device vhost-vsock-device: the guest's CID and the Unix socket of the userspace backend.</summary>
public sealed record VsockDeviceConfig(string Id, ulong GuestCid, string? UdsPath) : VirtioDeviceConfig(Id)
{
    public static readonly VirtioDeviceType Type = new("vhost-vsock", VirtioSlotClass.Other)
    {
        Drivers = [new("vhost-vsock-device", ["guest-cid", "vhostfd", "uds-path"], ParseDevice)],
        Usage = ["-device vhost-vsock-device,id=<id>,guest-cid=<n>[,uds-path=<socket>]"],
    };

    public override VirtioDeviceType DeviceType => Type;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine) =>
        new VirtioVsock(GuestCid, UdsPath ?? throw new ArgumentException(
            "this build has no vhost-vsock backend; give uds-path=<socket> for the userspace one")) { Id = Id };

    private static VsockDeviceConfig ParseDevice(OptionValue v, IDeviceOptionContext context)
    {
        string cidText = v.Get("guest-cid") ?? throw new UsageException("option -device: vhost-vsock-device needs guest-cid=");
        if (!ulong.TryParse(cidText, NumberStyles.None, CultureInfo.InvariantCulture, out ulong cid) || cid < 3 || cid > uint.MaxValue)
            throw new UsageException($"option -device: vhost-vsock-device guest-cid={cidText} is out of range 3-{uint.MaxValue}");
        if (v.Has("vhostfd"))
            throw new UsageException($"option -device: vhost-vsock-device vhostfd={v.Get("vhostfd")} hands over an open /dev/vhost-vsock, " +
                "but this build implements vsock in user space only; give uds-path=<socket> instead");
        if (context.Devices.Any(d => d is VsockDeviceConfig)) throw new UsageException("option -device: only one vhost-vsock-device is supported");
        return new VsockDeviceConfig(context.DeviceId(v), cid, v.Get("uds-path"));
    }
}
