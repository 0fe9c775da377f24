using System.Globalization;
using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices.Net;

/// <summary>A -netdev tap: by interface name, or an fd the caller passed in.</summary>
public sealed record TapConfig(string Id, string? IfName, int? Fd);

/// <summary>-device virtio-net-device on the tap of a -netdev.</summary>
public sealed record NetDeviceConfig(string Id, string? IfName, int? Fd, byte[]? Mac) : VirtioDeviceConfig(Id)
{
    private static readonly VirtioBackendOption Netdev = new("-netdev", null)
    {
        DefaultKey = "type",
        Parameters = ["type", "id", "ifname", "fd", "fds", "queues", "vhost", "vhostfd", "vhostfds", "script", "downscript"],
        Parse = ParseNetdev,
    };

    public static readonly VirtioDeviceType Type = new("virtio-net", VirtioSlotClass.Net)
    {
        Drivers = [new("virtio-net-device", ["netdev", "mac", "iothread", "mq", "queue-size"], ParseDevice)],
        Backends = [Netdev],
        HotplugMatch = "net",
        Usage =
        [
            "-netdev tap,id=<n>,ifname=<tap>|fd=<fd>",
            "-device virtio-net-device,netdev=<n>,id=<id>[,mac=<mac>][,iothread=<t>]",
        ],
    };

    public override VirtioDeviceType DeviceType => Type;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine) =>
        new VirtioNet(Fd is { } fd ? Tap.Adopt(fd) : Tap.Open(IfName!), Mac) { Id = Id };

    private static TapConfig ParseNetdev(OptionValue v, string id)
    {
        if (v.Get("type") != "tap")
            throw new UsageException($"option -netdev: netdev '{id}': type {v.Get("type")} is not supported (tap only)");
        if (v.GetBool("vhost", false))
            throw new UsageException($"option -netdev: netdev '{id}': vhost=on needs /dev/vhost-net, which this build does not use");
        if (v.GetInt("queues", 1, 16) is > 1)
            throw new UsageException($"option -netdev: netdev '{id}': the microvm has no multiqueue net (queues=1)");
        foreach (string script in new[] { "script", "downscript" })
            if (v.Get(script) is { } s && s != "no")
                throw new UsageException($"option -netdev: netdev '{id}': {script}={s} is not supported (use no)");
        int? fd = null;
        string? fdText = v.Get("fd") ?? v.Get("fds");
        if (fdText is not null)
        {
            if (fdText.Contains(':'))
                throw new UsageException($"option -netdev: netdev '{id}': several fds mean multiqueue, which the microvm lacks");
            if (!int.TryParse(fdText, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 3)
                throw new UsageException($"option -netdev: netdev '{id}': fd={fdText} is not an inherited file descriptor (3 or above)");
            fd = n;
        }
        string? ifname = v.Get("ifname");
        if (ifname is null == fd is null)
            throw new UsageException($"option -netdev: netdev '{id}': give exactly one of ifname= and fd=/fds=");
        return new TapConfig(id, ifname, fd);
    }

    private static NetDeviceConfig ParseDevice(OptionValue v, IDeviceOptionContext context)
    {
        var tap = context.Backend<TapConfig>(v, "netdev", "-netdev");
        return new NetDeviceConfig(context.DeviceId(v), tap.IfName, tap.Fd, ParseMac(v.Get("mac"))) { IoThread = v.Get("iothread") };
    }

    private static byte[]? ParseMac(string? text)
    {
        if (text is null) return null;
        try { return VirtioNet.ParseMac(text); }
        catch (ArgumentException e) { throw new UsageException($"option -device: mac={text}: {e.Message}"); }
    }
}
