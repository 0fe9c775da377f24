using System.Globalization;
using StratoVirt.Devices.Options;
using StratoVirt.Sys;
using StratoVirt.Virtio.Vhost;

namespace StratoVirt.Virtio.Devices.Vsock;

/// <summary>-device vhost-vsock-device: the guest's CID, and either the Unix socket of the userspace backend
/// (uds-path=) or the host kernel's vhost-vsock (an inherited vhostfd=, else /dev/vhost-vsock).</summary>
public sealed record VsockDeviceConfig(string Id, ulong GuestCid, string? UdsPath, int? VhostFd = null) : VirtioDeviceConfig(Id)
{
    public const string VhostPath = "/dev/vhost-vsock";

    public static readonly VirtioDeviceType Type = new("vhost-vsock", VirtioSlotClass.Other)
    {
        Drivers = [new("vhost-vsock-device", ["guest-cid", "vhostfd", "uds-path"], ParseDevice)],
        Usage = ["-device vhost-vsock-device,id=<id>,guest-cid=<n>[,vhostfd=<fd>|uds-path=<socket>]"],
    };

    public override VirtioDeviceType DeviceType => Type;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine) => UdsPath is { } path
        ? new VirtioVsock(GuestCid, path) { Id = Id }
        : new VhostVsock(GuestCid, VhostFd is { } fd ? VhostDevice.Adopt(fd) : VhostDevice.Open(VhostPath)) { Id = Id };

    private static VsockDeviceConfig ParseDevice(OptionValue v, IDeviceOptionContext context)
    {
        string cidText = v.Get("guest-cid") ?? throw new UsageException("option -device: vhost-vsock-device needs guest-cid=");
        if (!ulong.TryParse(cidText, NumberStyles.None, CultureInfo.InvariantCulture, out ulong cid) || cid < 3 || cid > uint.MaxValue)
            throw new UsageException($"option -device: vhost-vsock-device guest-cid={cidText} is out of range 3-{uint.MaxValue}");
        int? vhostFd = v.Get("vhostfd") is { } fdText ? VhostOptions.ParseFd("-device vhost-vsock-device", fdText) : null;
        if (vhostFd is not null && v.Has("uds-path"))
            throw new UsageException("option -device: vhost-vsock-device takes vhostfd= (kernel vhost) or uds-path= (user space), not both");
        if (context.HasDevice<VsockDeviceConfig>()) throw new UsageException("option -device: only one vhost-vsock-device is supported");
        return new VsockDeviceConfig(context.DeviceId(v), cid, v.Get("uds-path"), vhostFd);
    }
}
