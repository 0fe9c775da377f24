using System.Globalization;
using StratoVirt.Devices.Options;
using StratoVirt.Machine;
using StratoVirt.Machine.Qmp;
using StratoVirt.Virtio.Devices.Net;

namespace StratoVirt.Cli;

/// <summary>
/// -drive, -netdev, -chardev, -object and -device: backends are collected by id first, then each -device names
/// the backend it uses. Every id is unique across each kind, and every reference must resolve.
/// </summary>
internal sealed class DeviceOptions
{
    private readonly Dictionary<string, (string Path, bool ReadOnly, bool Direct)> _drives = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string? IfName, int? Fd)> _netdevs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ChardevConfig> _chardevs = new(StringComparer.Ordinal);
    /// <summary>TCP socket chardevs: only a -mon monitor can use them.</summary>
    private readonly Dictionary<string, MonitorEndpoint.Tcp> _tcpChardevs = new(StringComparer.Ordinal);
    private string? _monitorChardev;
    private readonly Dictionary<string, string> _rngs = new(StringComparer.Ordinal);
    private readonly List<string> _ioThreads = [];
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private readonly HashSet<string> _deviceIds = new(StringComparer.Ordinal);
    private readonly List<VirtioDeviceConfig> _devices = [];
    private bool _serialBus;
    private int _autoId;

    public IReadOnlyList<string> IoThreads => _ioThreads;

    /// <summary>Devices in slot order: block devices first (so the first is /dev/vda), then net, then the rest.</summary>
    public IReadOnlyList<VirtioDeviceConfig> Devices =>
        [.. _devices.OrderBy(d => d switch { BlockDeviceConfig => 0, NetDeviceConfig => 1, _ => 2 })];

    public IReadOnlyDictionary<string, ChardevConfig> Chardevs => _chardevs;

    /// <summary>The QMP endpoint -mon names through its socket chardev, or null without -mon.</summary>
    public MonitorEndpoint? Monitor { get; private set; }

    public static DeviceOptions Parse(Dictionary<string, List<string>> o)
    {
        var d = new DeviceOptions();
        foreach (string v in Values(o, "-drive")) d.AddDrive(v);
        foreach (string v in Values(o, "-netdev")) d.AddNetdev(v);
        foreach (string v in Values(o, "-chardev")) d.AddChardev(v);
        foreach (string v in Values(o, "-mon")) d.AddMonitor(v);
        foreach (string v in Values(o, "-object")) d.AddObject(v);
        foreach (string v in Values(o, "-device")) d.AddDevice(v);
        return d;
    }

    private static IEnumerable<string> Values(Dictionary<string, List<string>> o, string name) =>
        o.TryGetValue(name, out var list) ? list : [];

    private static string RequireId(OptionValue v, string option) =>
        v.Get("id") is { Length: > 0 } id ? id : throw new UsageException($"option {option}: id= is required");

    private static void Unique<T>(Dictionary<string, T> map, string id, string option, T value)
    {
        if (!map.TryAdd(id, value)) throw new UsageException($"option {option}: id '{id}' is used twice");
    }

    private void AddDrive(string text)
    {
        var v = new OptionValue("-drive", text, null, ["id", "file", "readonly", "direct", "aio", "format", "if",
            "discard", "detect-zeroes", "throttling.iops-total", "media", "unit", "l2-cache-size", "refcount-cache-size"]);
        string id = RequireId(v, "-drive");
        string file = v.Get("file") is { Length: > 0 } f ? f : throw new UsageException($"option -drive: drive '{id}' needs file=");
        if (v.Get("format") is { } format && format != "raw")
            throw new UsageException($"option -drive: drive '{id}': format={format} is not supported by the microvm (raw only)");
        if (v.Get("if") is { } iface && iface != "none")
            throw new UsageException($"option -drive: drive '{id}': if={iface} is not supported by the microvm");
        if (v.Get("media") is { } media && media != "disk")
            throw new UsageException($"option -drive: drive '{id}': media={media} is not supported by the microvm");
        if (v.Get("aio") is { } aio && aio is not ("native" or "io_uring" or "threads" or "off"))
            throw new UsageException($"option -drive: drive '{id}': aio={aio} is not one of native, io_uring, threads, off");
        Unique(_drives, id, "-drive", (file, v.GetBool("readonly", false), v.GetBool("direct", true)));
    }

    private void AddNetdev(string text)
    {
        var v = new OptionValue("-netdev", text, "type", ["type", "id", "ifname", "fd", "fds", "queues", "vhost",
            "vhostfd", "vhostfds", "script", "downscript"]);
        string id = RequireId(v, "-netdev");
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
        Unique(_netdevs, id, "-netdev", (ifname, fd));
    }

    private void AddChardev(string text)
    {
        var v = new OptionValue("-chardev", text, "backend", ["backend", "id", "path", "server", "nowait", "wait",
            "host", "port", "mux", "signal"]);
        string id = RequireId(v, "-chardev");
        if (v.Get("backend") == "socket" && (v.Has("host") || v.Has("port")))
        {
            AddTcpChardev(v, id);
            return;
        }
        ChardevConfig config = v.Get("backend") switch
        {
            "stdio" => new ChardevConfig.Stdio(id),
            "pty" => new ChardevConfig.Pty(id),
            "file" => new ChardevConfig.File(id, v.Get("path") ?? throw new UsageException($"option -chardev: file chardev '{id}' needs path=")),
            "socket" => new ChardevConfig.UnixSocket(id,
                v.Get("path") ?? throw new UsageException($"option -chardev: socket chardev '{id}' needs path="),
                v.GetBool("server", false), v.GetBool("nowait", false) || !v.GetBool("wait", true)),
            var other => throw new UsageException($"option -chardev: unknown backend '{other}' (stdio, pty, socket or file)"),
        };
        if (config is ChardevConfig.UnixSocket { Server: false })
            throw new UsageException($"option -chardev: chardev '{id}': only server sockets are supported (add server,nowait)");
        if (_tcpChardevs.ContainsKey(id)) throw new UsageException($"option -chardev: id '{id}' is used twice");
        Unique(_chardevs, id, "-chardev", config);
    }

    /// <summary>socket,host=,port=: kept apart from the other chardevs, since only -mon can use it.</summary>
    private void AddTcpChardev(OptionValue v, string id)
    {
        if (v.Has("path")) throw new UsageException($"option -chardev: chardev '{id}': give either path= or host= and port=");
        if (!v.GetBool("server", false) || !(v.GetBool("nowait", false) || !v.GetBool("wait", true)))
            throw new UsageException($"option -chardev: chardev '{id}': only server sockets are supported (add server,nowait)");
        MonitorEndpoint.Tcp endpoint;
        try
        {
            endpoint = MonitorEndpoint.ParseTcp(v.Get("host") ?? "", v.Get("port") ?? "");
        }
        catch (FormatException e)
        {
            throw new UsageException($"option -chardev: chardev '{id}': {e.Message}");
        }
        if (_chardevs.ContainsKey(id) || !_tcpChardevs.TryAdd(id, endpoint))
            throw new UsageException($"option -chardev: id '{id}' is used twice");
    }

    /// <summary>-mon chardev=&lt;id&gt;,id=&lt;monid&gt;[,mode=control]: QMP on a socket chardev, which no device
    /// may then use (as upstream, the monitor takes the chardev).</summary>
    private void AddMonitor(string text)
    {
        if (Monitor is not null) throw new UsageException("option -mon: only one monitor is supported");
        var v = new OptionValue("-mon", text, null, ["chardev", "id", "mode", "pretty"]);
        if (v.Get("mode") is { } mode && mode != "control")
            throw new UsageException($"option -mon: mode={mode} is not supported; only mode=control (QMP)");
        string chardev = v.Get("chardev") is { Length: > 0 } c ? c : throw new UsageException("option -mon: chardev= is required");
        if (_tcpChardevs.TryGetValue(chardev, out var tcp)) Monitor = tcp;
        else if (!_chardevs.TryGetValue(chardev, out var config))
            throw new UsageException($"option -mon: no -chardev with id '{chardev}'");
        else if (config is ChardevConfig.UnixSocket socket)
        {
            if (!socket.NoWait)
                throw new UsageException($"option -mon: chardev '{chardev}' needs both server and nowait");
            Monitor = new MonitorEndpoint.Unix(socket.Path);
        }
        else
        {
            throw new UsageException(
                $"option -mon: chardev '{chardev}' is a {config.GetType().Name.ToLowerInvariant()} chardev; the monitor needs a socket chardev");
        }
        _monitorChardev = chardev;
    }

    private void AddObject(string text)
    {
        var v = new OptionValue("-object", text, "type", ["type", "id", "filename", "size", "host-nodes", "policy",
            "mem-path", "share", "prealloc", "dump-guest-core"]);
        string id = RequireId(v, "-object");
        switch (v.Get("type"))
        {
            case "iothread":
                if (_ioThreads.Contains(id)) throw new UsageException($"option -object: id '{id}' is used twice");
                _ioThreads.Add(id);
                break;
            case "rng-random":
                Unique(_rngs, id, "-object", v.Get("filename") ?? "/dev/random");
                break;
            case var type when type is not null && type.StartsWith("memory-backend-", StringComparison.Ordinal):
                throw new UsageException($"option -object: {type} is not supported by this build yet");
            case var type:
                throw new UsageException($"option -object: unknown object type '{type}' (iothread or rng-random)");
        }
    }

    private void AddDevice(string text)
    {
        string driver = text.Split(',')[0];
        switch (driver)
        {
            case "virtio-blk-device":
            {
                var v = Device(text, ["drive", "serial", "iothread", "bootindex", "num-queues", "queue-size"]);
                string drive = Reference(v, "drive", _drives.ContainsKey, "-drive");
                var (path, ro, direct) = _drives[drive];
                string? serial = v.Get("serial");
                if (serial is { Length: > 20 })
                    throw new UsageException($"option -device: virtio-blk '{DeviceId(v)}': serial= is longer than 20 characters");
                Add(new BlockDeviceConfig(DeviceId(v), path, ro, direct, serial) { IoThread = v.Get("iothread") });
                break;
            }
            case "virtio-net-device":
            {
                var v = Device(text, ["netdev", "mac", "iothread", "mq", "queue-size"]);
                string netdev = Reference(v, "netdev", _netdevs.ContainsKey, "-netdev");
                var (ifname, fd) = _netdevs[netdev];
                Add(new NetDeviceConfig(DeviceId(v), ifname, fd, ParseMac(v.Get("mac"))) { IoThread = v.Get("iothread") });
                break;
            }
            case "virtio-serial-device":
                Device(text, ["max_ports"]);
                if (_serialBus) throw new UsageException("option -device: only one virtio-serial-device is supported");
                _serialBus = true;
                break;
            case "virtconsole":
            {
                var v = Device(text, ["chardev", "nr"]);
                if (!_serialBus) throw new UsageException("option -device: virtconsole needs a virtio-serial-device before it");
                if (_devices.Any(d => d is ConsoleDeviceConfig))
                    throw new UsageException("option -device: the microvm's virtio-serial has one port; only one virtconsole is supported");
                if (v.GetInt("nr", 0, 0) is null && v.Has("nr")) throw new UsageException("option -device: virtconsole nr must be 0");
                string chardev = Reference(v, "chardev", _chardevs.ContainsKey, "-chardev");
                Add(new ConsoleDeviceConfig(DeviceId(v), _chardevs[chardev]));
                break;
            }
            case "virtio-rng-device":
            {
                var v = Device(text, ["rng", "max-bytes", "period"]);
                string rng = Reference(v, "rng", _rngs.ContainsKey, "-object rng-random");
                Add(new RngDeviceConfig(DeviceId(v), _rngs[rng]));
                break;
            }
            case "virtio-balloon-device":
            {
                var v = Device(text, ["deflate-on-oom", "free-page-reporting", "auto-balloon", "membuf-percent", "monitor-interval"]);
                if (v.GetBool("auto-balloon", false))
                    throw new UsageException("option -device: virtio-balloon auto-balloon is not supported by this build");
                if (_devices.Any(d => d is BalloonDeviceConfig)) throw new UsageException("option -device: only one virtio-balloon-device is supported");
                Add(new BalloonDeviceConfig(DeviceId(v), v.GetBool("deflate-on-oom", false), v.GetBool("free-page-reporting", false)));
                break;
            }
            case "vhost-vsock-device":
            {
                var v = Device(text, ["guest-cid", "vhostfd", "uds-path"]);
                string cidText = v.Get("guest-cid") ?? throw new UsageException("option -device: vhost-vsock-device needs guest-cid=");
                if (!ulong.TryParse(cidText, NumberStyles.None, CultureInfo.InvariantCulture, out ulong cid) || cid < 3 || cid > uint.MaxValue)
                    throw new UsageException($"option -device: vhost-vsock-device guest-cid={cidText} is out of range 3-{uint.MaxValue}");
                if (v.Has("vhostfd"))
                    throw new UsageException($"option -device: vhost-vsock-device vhostfd={v.Get("vhostfd")} hands over an open /dev/vhost-vsock, " +
                        "but this build implements vsock in user space only; give uds-path=<socket> instead");
                if (_devices.Any(d => d is VsockDeviceConfig)) throw new UsageException("option -device: only one vhost-vsock-device is supported");
                Add(new VsockDeviceConfig(DeviceId(v), cid, v.Get("uds-path")));
                break;
            }
            case var d when d.EndsWith("-pci", StringComparison.Ordinal):
                throw new UsageException($"option -device: {d} needs the standard VM; the microvm uses the -device variants (virtio-mmio)");
            default:
                throw new UsageException($"option -device: unknown or unsupported driver '{driver}'");
        }
    }

    private OptionValue Device(string text, string[] keys) =>
        new("-device", text, "driver", ["driver", "id", "bus", "addr", .. keys]);

    private string DeviceId(OptionValue v) => v.Get("id") ?? $"{v.Get("driver")}-{_autoId}";

    private void Add(VirtioDeviceConfig config)
    {
        if (!_deviceIds.Add(config.Id)) throw new UsageException($"option -device: id '{config.Id}' is used twice");
        if (config.IoThread is { } io && !_ioThreads.Contains(io))
            throw new UsageException($"option -device: '{config.Id}': iothread '{io}' is not defined (add -object iothread,id={io})");
        _devices.Add(config);
        _autoId++;
    }

    private string Reference(OptionValue v, string key, Func<string, bool> exists, string option)
    {
        string driver = v.Get("driver")!;
        string name = v.Get(key) ?? throw new UsageException($"option -device: {driver} needs {key}=");
        if (option == "-chardev" && (name == _monitorChardev || _tcpChardevs.ContainsKey(name)))
        {
            throw new UsageException(name == _monitorChardev
                ? $"option -device: {driver} {key}={name}: that chardev is used by the -mon monitor"
                : $"option -device: {driver} {key}={name}: TCP chardevs serve only -mon in this build; use path=");
        }
        if (!exists(name)) throw new UsageException($"option -device: {driver} {key}={name}: no {option} with id '{name}'");
        if (!_used.Add($"{option}/{name}")) throw new UsageException($"option -device: {option} '{name}' is used by two devices");
        return name;
    }

    private static byte[]? ParseMac(string? text)
    {
        if (text is null) return null;
        try { return VirtioNet.ParseMac(text); }
        catch (ArgumentException e) { throw new UsageException($"option -device: mac={text}: {e.Message}"); }
    }
}
