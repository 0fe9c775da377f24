using System.Globalization;
using StratoVirt.Devices.Options;
using StratoVirt.Sys;
using StratoVirt.Virtio.Vhost;

namespace StratoVirt.Virtio.Devices.Net;

/// <summary>A -netdev tap: by interface name, or an fd the caller passed in; with vhost=on, the kernel's
/// vhost-net serves its queues (through an inherited vhostfd=, else /dev/vhost-net).</summary>
public sealed record TapConfig(string Id, string? IfName, int? Fd, bool Vhost = false, int? VhostFd = null);

/// <summary>-device virtio-net-device on the tap of a -netdev.</summary>
public sealed record NetDeviceConfig(string Id, string? IfName, int? Fd, byte[]? Mac, bool Vhost = false, int? VhostFd = null)
    : VirtioDeviceConfig(Id)
{
    public const string VhostPath = "/dev/vhost-net";

    private static readonly VirtioBackendOption Netdev = new("-netdev", null)
    {
        DefaultKey = "type",
        Parameters = ["type", "id", "ifname", "fd", "fds", "queues", "vhost", "vhostfd", "vhostfds", "script", "downscript"],
        Parse = ParseNetdev,
    };

    public static readonly VirtioDeviceType Type = new("virtio-net", VirtioSlotClass.Net)
    {
        Drivers = [new("virtio-net-device", ["netdev", "mac", "iothread", "mq", "queue-size", "bootindex"], ParseDevice)],
        Backends = [Netdev],
        HotplugMatch = "net",
        Usage =
        [
            "-netdev tap,id=<n>,ifname=<tap>|fd=<fd>[,vhost=on|off][,vhostfd=<fd>]",
            "-device virtio-net-device,netdev=<n>,id=<id>[,mac=<mac>][,iothread=<t>]",
        ],
    };

    public override VirtioDeviceType DeviceType => Type;

    /// <summary>A vhost-net device is not a replaceable hotplug slot: it takes one of the other slots.</summary>
    public override VirtioSlotClass Slot => Vhost ? VirtioSlotClass.Other : VirtioSlotClass.Net;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine)
    {
        var tap = Fd is { } fd ? Tap.Adopt(fd) : Tap.Open(IfName!);
        if (!Vhost) return new VirtioNet(tap, Mac) { Id = Id };
        VhostDevice vhost;
        try { vhost = VhostFd is { } vfd ? VhostDevice.Adopt(vfd) : VhostDevice.Open(VhostPath); }
        catch
        {
            tap.Dispose();
            throw;
        }
        return new VhostNet(tap, vhost, Mac) { Id = Id };
    }

    private static TapConfig ParseNetdev(OptionValue v, string id)
    {
        if (v.Get("type") != "tap")
            throw new UsageException($"option -netdev: netdev '{id}': type {v.Get("type")} is not supported (tap only)");
        bool vhost = v.GetBool("vhost", false);
        int? vhostFd = null;
        if ((v.Get("vhostfd") ?? v.Get("vhostfds")) is { } vhostText)
        {
            if (vhostText.Contains(':'))
                throw new UsageException($"option -netdev: netdev '{id}': several vhostfds mean multiqueue, which the microvm lacks");
            if (!vhost) throw new UsageException($"option -netdev: netdev '{id}': vhostfd= needs vhost=on");
            vhostFd = VhostOptions.ParseFd($"-netdev: netdev '{id}'", vhostText);
        }
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
        return new TapConfig(id, ifname, fd, vhost, vhostFd);
    }

    private static NetDeviceConfig ParseDevice(OptionValue v, IDeviceOptionContext context)
    {
        var tap = context.Backend<TapConfig>(v, "netdev", "-netdev");
        return new NetDeviceConfig(context.DeviceId(v), tap.IfName, tap.Fd, ParseMac(v.Get("mac")), tap.Vhost, tap.VhostFd)
            { IoThread = v.Get("iothread"), BootIndex = v.GetInt("bootindex", 0, ushort.MaxValue) };
    }

    private static byte[]? ParseMac(string? text)
    {
        if (text is null) return null;
        try { return VirtioNet.ParseMac(text); }
        catch (ArgumentException e) { throw new UsageException($"option -device: mac={text}: {e.Message}"); }
    }
}
