using System.Globalization;
using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Options;
using StratoVirt.Devices.Pci;
using StratoVirt.Machine;
using StratoVirt.Qmp;
using StratoVirt.Virtio.Devices;

namespace StratoVirt.Cli;

/// <summary>
/// -drive, -netdev, -chardev, -object and -device: backends are collected by id first, then each -device names
/// the backend it uses. Every id is unique across each kind, and every reference must resolve. The -device
/// drivers, and the backend options they consume, are those of a <see cref="VirtioDeviceRegistry"/>.
/// </summary>
internal sealed partial class DeviceOptions : IDeviceOptionContext
{
    private readonly VirtioDeviceRegistry _registry;
    /// <summary>The registry's backends (-drive, -netdev, -object rng-random, ...) by option name, then by id.</summary>
    private readonly Dictionary<string, Dictionary<string, object>> _backends = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ChardevConfig> _chardevs = new(StringComparer.Ordinal);
    /// <summary>TCP socket chardevs: only a -mon monitor can use them.</summary>
    private readonly Dictionary<string, MonitorEndpoint.Tcp> _tcpChardevs = new(StringComparer.Ordinal);
    private string? _monitorChardev;
    private readonly List<string> _ioThreads = [];
    private readonly Dictionary<string, MemoryBackend> _memoryBackends = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private readonly HashSet<string> _deviceIds = new(StringComparer.Ordinal);
    private readonly HashSet<string> _drivers = new(StringComparer.Ordinal);
    private readonly List<VirtioDeviceConfig> _devices = [];
    private int _autoId;
    private readonly MachineType _machine;
    /// <summary>The address of virtio-serial-pci, which the virtconsole on it takes.</summary>
    private PciPlacement? _lentPlacement;
    private readonly List<PcieRootPortConfig> _rootPorts = [];

    private DeviceOptions(VirtioDeviceRegistry registry, MachineType machine)
    {
        _registry = registry;
        _machine = machine;
        foreach (var backend in registry.Backends) _backends[backend.Name] = new(StringComparer.Ordinal);
    }

    public IReadOnlyList<string> IoThreads => _ioThreads;

    /// <summary>Devices in slot order: block devices first (so the first is /dev/vda), then net, then the rest.</summary>
    public IReadOnlyList<VirtioDeviceConfig> Devices
    {
        get
        {
            // An insertion sort: stable, so each slot class keeps the command-line order.
            var sorted = new List<VirtioDeviceConfig>(_devices.Count);
            foreach (var device in _devices)
            {
                int i = sorted.Count;
                while (i > 0 && sorted[i - 1].Slot > device.Slot) i--;
                sorted.Insert(i, device);
            }
            return sorted;
        }
    }

    IReadOnlyList<VirtioDeviceConfig> IDeviceOptionContext.Devices => _devices;

    public IReadOnlyDictionary<string, ChardevConfig> Chardevs => _chardevs;

    /// <summary>The -device pcie-root-port devices, in command-line order.</summary>
    public IReadOnlyList<PcieRootPortConfig> RootPorts => _rootPorts;

    /// <summary>The -object memory-backend-* objects by id.</summary>
    public IReadOnlyDictionary<string, MemoryBackend> MemoryBackends => _memoryBackends;

    /// <summary>The QMP endpoint -mon names through its socket chardev, or null without -mon.</summary>
    public MonitorEndpoint? Monitor { get; private set; }

    public static DeviceOptions Parse(Dictionary<string, List<string>> o, VirtioDeviceRegistry registry, MachineType machine)
    {
        var d = new DeviceOptions(registry, machine);
        foreach (var backend in registry.Backends)
            if (backend.ObjectType is null)
                foreach (string v in Values(o, backend.Option)) d.AddBackend(backend, v);
        foreach (string v in Values(o, "-chardev")) d.AddChardev(v);
        foreach (string v in Values(o, "-mon")) d.AddMonitor(v);
        foreach (string v in Values(o, "-object")) d.AddObject(v);
        foreach (string v in Values(o, "-device")) d.AddDevice(v);
        foreach (string v in Values(o, "-serial")) d.AddSerial(v);
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

    /// <summary>-drive, -netdev: an option a device type consumes whole.</summary>
    private void AddBackend(VirtioBackendOption backend, string text)
    {
        var v = new OptionValue(backend.Option, text, backend.DefaultKey, backend.Parameters);
        string id = RequireId(v, backend.Option);
        Unique(_backends[backend.Name], id, backend.Option, backend.Parse(v, id));
    }

    private void AddChardev(string text)
    {
        var v = new OptionValue("-chardev", text, "backend", ["backend", "id", .. ChardevParameters]);
        string id = RequireId(v, "-chardev");
        if (IsTcpSocket(v))
        {
            AddTcpChardev(v, id);
            return;
        }
        var config = ParseChardev(v, "-chardev", id);
        if (_tcpChardevs.ContainsKey(id)) throw new UsageException($"option -chardev: id '{id}' is used twice");
        Unique(_chardevs, id, "-chardev", config);
    }

    /// <summary>A chardev backend's parameters after its name, but for id (-serial's inline backends have none).</summary>
    private static readonly string[] ChardevParameters = ["path", "server", "nowait", "wait", "host", "port", "mux", "signal"];

    private static bool IsTcpSocket(OptionValue v) => v.Get("backend") == "socket" && (v.Has("host") || v.Has("port"));

    /// <summary>A stdio, pty, file or unix socket backend, for -chardev and -serial's inline forms.</summary>
    private static ChardevConfig ParseChardev(OptionValue v, string option, string id)
    {
        ChardevConfig config = v.Get("backend") switch
        {
            "stdio" => new ChardevConfig.Stdio(id),
            "pty" => new ChardevConfig.Pty(id),
            "file" => new ChardevConfig.File(id, v.Get("path") ?? throw new UsageException($"option {option}: file chardev '{id}' needs path=")),
            "socket" => new ChardevConfig.UnixSocket(id,
                v.Get("path") ?? throw new UsageException($"option {option}: socket chardev '{id}' needs path="),
                v.GetBool("server", false), v.GetBool("nowait", false) || !v.GetBool("wait", true)),
            var other => throw new UsageException($"option {option}: unknown backend '{other}' (stdio, pty, socket or file)"),
        };
        if (config is ChardevConfig.UnixSocket { Server: false })
            throw new UsageException($"option {option}: chardev '{id}': only server sockets are supported (add server,nowait)");
        return config;
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

    /// <summary>-object: iothreads are the machine's; the other types are backends of registered devices.</summary>
    private void AddObject(string text)
    {
        if (ObjectType(text).StartsWith("memory-backend-", StringComparison.Ordinal))
        {
            var memory = MemoryOptions.ParseBackend(text);
            if (_ioThreads.Contains(memory.Id)) throw new UsageException($"option -object: id '{memory.Id}' is used twice");
            Unique(_memoryBackends, memory.Id, "-object", memory);
            return;
        }
        var types = new List<VirtioBackendOption>();
        List<string> keys = ["type", "id"];
        foreach (var b in _registry.Backends)
        {
            if (b.ObjectType is null) continue;
            types.Add(b);
            foreach (string key in b.Parameters)
                if (!keys.Contains(key)) keys.Add(key);
        }
        var v = new OptionValue("-object", text, "type", keys);
        string id = RequireId(v, "-object");
        string? type = v.Get("type");
        if (type == "iothread")
        {
            if (_ioThreads.Contains(id) || _memoryBackends.ContainsKey(id)) throw new UsageException($"option -object: id '{id}' is used twice");
            _ioThreads.Add(id);
        }
        else if (types.Find(b => b.ObjectType == type) is { } backend)
        {
            Unique(_backends[backend.Name], id, "-object", backend.Parse(v, id));
        }
        else
        {
            throw new UsageException(
                $"option -object: unknown object type '{type}' (iothread, memory-backend-* or {string.Join(" or ", types.ConvertAll(b => b.ObjectType))})");
        }
    }

    /// <summary>The type of an -object value (its first item, or type=), before its keys can be checked.</summary>
    private static string ObjectType(string text)
    {
        var parts = text.Split(',');
        return parts[0].Contains('=')
            ? Array.Find(parts, p => p.StartsWith("type=", StringComparison.Ordinal))?[5..] ?? ""
            : parts[0];
    }

    /// <summary>The virtio-pci drivers the q35 machine takes: each is its virtio-mmio driver's device on a PCI
    /// address (virtio-blk-pci parses as virtio-blk-device plus bus=, addr=, multifunction=).</summary>
    private static readonly string[] PciDrivers =
        ["virtio-blk-pci", "virtio-net-pci", "virtio-rng-pci", "virtio-balloon-pci", "virtio-serial-pci", "vhost-vsock-pci",
            "vhost-user-fs-pci", "vhost-user-blk-pci"];

    private void AddDevice(string text)
    {
        string name = text.Split(',')[0];
        if (name == RootPortDriver)
        {
            AddRootPort(text);
            return;
        }
        bool pci = name.EndsWith("-pci", StringComparison.Ordinal);
        // On q35 a port device (virtconsole) goes on the PCI device before it (virtio-serial-pci).
        bool mismatch = pci ? _machine != MachineType.Q35 : _machine == MachineType.Q35 && _lentPlacement is null;
        if (mismatch && _registry.Driver(pci ? MmioName(name) : name) is not null)
        {
            throw new UsageException(pci
                ? $"option -device: {name} needs the standard VM (-machine q35); the microvm uses the -device variants (virtio-mmio)"
                : $"option -device: {name} is a virtio-mmio device of the microvm; the q35 machine takes the -pci variants (virtio-*-pci)");
        }
        if (pci && !PciDrivers.Contains(name))
            throw new UsageException($"option -device: {name} is not supported on q35 by this build ({string.Join(", ", PciDrivers)})");
        if (_registry.Driver(pci ? MmioName(name) : name) is { } driver)
        {
            var v = new OptionValue("-device", text, "driver",
                ["driver", "id", "bus", "addr", .. pci ? ["multifunction"] : Array.Empty<string>(), .. driver.Parameters]);
            var placement = pci ? PciPlacement.Parse(v, name) : null;
            if (placement is not null) CheckBus(placement, name);
            var config = driver.Parse(v, this);
            // A bus device with no model of its own (virtio-serial-pci) lends its address to the device on it.
            if (placement is not null && config is null) _lentPlacement = placement;
            else if (config is not null) Add(placement is null && _lentPlacement is null ? config : config with { Pci = placement ?? _lentPlacement });
            _drivers.Add(driver.Name);
            return;
        }
        throw new UsageException($"option -device: unknown or unsupported driver '{name}'");
    }

    private const string RootPortDriver = "pcie-root-port";

    /// <summary>-device pcie-root-port,id=,port=,chassis=,bus=pcie.0,addr=[,multifunction=]: upstream's native
    /// hotplug slot; its id names the bus behind it.</summary>
    private void AddRootPort(string text)
    {
        if (_machine != MachineType.Q35)
            throw new UsageException($"option -device: {RootPortDriver} needs the standard VM (-machine q35)");
        var v = new OptionValue("-device", text, "driver", ["driver", "id", "port", "chassis", "bus", "addr", "multifunction"]);
        string id = RequireId(v, "-device " + RootPortDriver);
        var placement = PciPlacement.Parse(v, RootPortDriver);
        if (placement.Bus != PciPlacement.RootBus)
            throw new UsageException($"option -device: {RootPortDriver} '{id}': bus={placement.Bus}: root ports go on {PciPlacement.RootBus}");
        if (placement.Slot is null) throw new UsageException($"option -device: {RootPortDriver} '{id}' needs addr=");
        byte port = Byte(v, "port") ?? throw new UsageException($"option -device: {RootPortDriver} '{id}' needs port=");
        if (id == PciPlacement.RootBus || _rootPorts.Exists(p => p.Id == id) || !_deviceIds.Add(id))
            throw new UsageException($"option -device: id '{id}' is used twice");
        _rootPorts.Add(new PcieRootPortConfig(id, port, Byte(v, "chassis") ?? 0, placement));
    }

    /// <summary>A byte option in hex (0x..) or decimal, as upstream's port= and chassis=.</summary>
    private static byte? Byte(OptionValue v, string key)
    {
        if (v.Get(key) is not { } text) return null;
        bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        if (!byte.TryParse(hex ? text[2..] : text, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out byte b))
            throw new UsageException($"option -device: {RootPortDriver} {key}={text} is not a number from 0 to 255");
        return b;
    }

    /// <summary>A device goes on pcie.0 or behind a root port declared before it, and there only at slot 0 (a root
    /// port's link reaches one device).</summary>
    private void CheckBus(PciPlacement placement, string driver)
    {
        if (placement.Bus == PciPlacement.RootBus) return;
        if (!_rootPorts.Exists(p => p.Id == placement.Bus))
            throw new UsageException($"option -device: {driver} bus={placement.Bus}: no such bus (the q35 machine has {PciPlacement.RootBus} " +
                "and the buses of the pcie-root-port devices given before it)");
        if (placement.Slot is not (null or 0))
            throw new UsageException($"option -device: {driver} addr=0x{placement.Slot:x}: a device behind root port '{placement.Bus}' sits at slot 0 (addr=0x0)");
    }

    /// <summary>virtio-blk-pci to virtio-blk-device, vhost-user-fs-pci to vhost-user-fs-device.</summary>
    private static string MmioName(string pciDriver) => pciDriver[..^"-pci".Length] + "-device";

    public string DeviceId(OptionValue v) => v.Get("id") ?? $"{v.Get("driver")}-{_autoId}";

    public bool HasDriver(string driver) => _drivers.Contains(driver);

    private void Add(VirtioDeviceConfig config)
    {
        if (!_deviceIds.Add(config.Id)) throw new UsageException($"option -device: id '{config.Id}' is used twice");
        if (config.BootIndex is { } index && _devices.Find(d => d.BootIndex == index) is { } other)
            throw new UsageException($"option -device: '{config.Id}': bootindex={index} is used by '{other.Id}' too");
        if (config.IoThread is { } io && !_ioThreads.Contains(io))
            throw new UsageException($"option -device: '{config.Id}': iothread '{io}' is not defined (add -object iothread,id={io})");
        _devices.Add(config);
        _autoId++;
    }

    public T Backend<T>(OptionValue v, string key, string option) where T : class
    {
        string driver = v.Get("driver")!;
        string name = v.Get(key) ?? throw new UsageException($"option -device: {driver} needs {key}=");
        if (option == "-chardev" && (name == _monitorChardev || _tcpChardevs.ContainsKey(name)))
        {
            throw new UsageException(name == _monitorChardev
                ? $"option -device: {driver} {key}={name}: that chardev is used by the -mon monitor"
                : $"option -device: {driver} {key}={name}: TCP chardevs serve only -mon in this build; use path=");
        }
        object? backend = option == "-chardev" ? _chardevs.GetValueOrDefault(name) : _backends[option].GetValueOrDefault(name);
        if (backend is null) throw new UsageException($"option -device: {driver} {key}={name}: no {option} with id '{name}'");
        if (!_used.Add($"{option}/{name}")) throw new UsageException($"option -device: {option} '{name}' is used by two devices");
        return (T)backend;
    }
}
