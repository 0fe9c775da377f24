using static StratoVirt.Qmp.QmpMember;

namespace StratoVirt.Qmp;

/// <summary>The arguments of the hotplug commands, with upstream's names. Members upstream keeps only for QEMU
/// compatibility are <see cref="QmpType.Any"/>: any value is accepted, and ignored.</summary>
internal static class QmpHotplugArguments
{
    private static readonly QmpType Str = QmpType.String, Bool = QmpType.Boolean, Any = QmpType.Any;

    public static readonly QmpType BlockdevAdd = QmpType.Object(
        Req("node-name", Str),
        Req("file", QmpType.Object(Req("driver", Str), Req("filename", Str), Opt("aio", Str))),
        Opt("driver", Str),
        Opt("read-only", Bool),
        Opt("cache", QmpType.Object(Opt("direct", Bool), Opt("no-flush", Bool))),
        Opt("media", Str),
        Opt("detect-zeroes", Any), Opt("discard", Any), Opt("id", Any), Opt("options", Any), Opt("backing", Any),
        Opt("throttling.iops-total", Any), Opt("l2-cache-size", Any), Opt("refcount-cache-size", Any));

    /// <summary>blockdev-del.</summary>
    public static readonly QmpType NodeName = QmpType.Object(Req("node-name", Str));

    /// <summary>netdev_del, device_del and chardev-remove.</summary>
    public static readonly QmpType Id = QmpType.Object(Req("id", Str));

    public static readonly QmpType NetdevAdd = QmpType.Object(
        Req("id", Str),
        Opt("ifname", Str), Opt("fd", Str), Opt("fds", Str), Opt("type", Str), Opt("vhost", Bool), Opt("vhostfd", Str),
        Opt("vhostfds", Str), Opt("queues", QmpType.Int32), Opt("script", Str), Opt("downscript", Str),
        Opt("dnssearch", Any), Opt("chardev", Any), Opt("macnat", Any));

    public static readonly QmpType DeviceAdd = QmpType.Object(
        Req("id", Str), Req("driver", Str),
        Opt("addr", Str), Opt("lun", QmpType.Int32), Opt("drive", Str), Opt("netdev", Str), Opt("chardev", Str),
        Opt("mac", Str), Opt("serial", Str), Opt("iothread", Str), Opt("romfile", Any), Opt("share-rw", Any),
        Opt("bus", Str), Opt("disable-modern", Any), Opt("mq", Any), Opt("vectors", Any), Opt("multifunction", Any),
        Opt("host", Any), Opt("num-queues", QmpType.UInt16), Opt("boot_index", Any), Opt("sysfsdev", Any),
        Opt("queue-size", QmpType.UInt16), Opt("port", Any), Opt("backend", Any), Opt("path", Any),
        Opt("cameradev", Any), Opt("hostbus", Any), Opt("hostaddr", Any), Opt("hostport", Any), Opt("vendorid", Any),
        Opt("productid", Any), Opt("isobufs", Any), Opt("isobsize", Any), Opt("cpu-id", Any));

    /// <summary>chardev-add: <c>{"id","backend":{"type","data":{"addr":{"type","data":{"path"}},"server"}}}</c>,
    /// every member required (as upstream's schema).</summary>
    public static readonly QmpType ChardevAdd = QmpType.Object(
        Req("id", Str),
        Req("backend", QmpType.Object(
            Req("type", Str),
            Req("data", QmpType.Object(
                Req("addr", QmpType.Object(Req("type", Str), Req("data", QmpType.Object(Req("path", Str))))),
                Req("server", Bool))))));
}
