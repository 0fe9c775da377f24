using StratoVirt.Devices.Options;
using StratoVirt.Machine;
using StratoVirt.Devices.Chardev;
using StratoVirt.Qmp;
using StratoVirt.Virtio.Devices;

namespace StratoVirt.Cli;

/// <summary>The stratovirt command line turned into a machine configuration and process settings.</summary>
public sealed record Options(MachineConfig Machine, string? LogFile, bool LogEnabled)
{
    /// <summary>-daemonize: run in the background once the VM is set up (see Daemon).</summary>
    public bool Daemonize { get; init; }

    /// <summary>Where QMP listens: -qmp (unix:path or tcp:ip:port) and -mon's socket chardev; empty for none.</summary>
    public IReadOnlyList<MonitorEndpoint> Monitors { get; init; } = [];

    /// <summary>-pidfile: where the daemon writes its pid; only with -daemonize, as upstream.</summary>
    public string? PidFile { get; init; }

    public const ulong MinMemory = 128UL << 20;
    public const ulong MaxMemory = 512UL << 30;

    private static readonly string Later = "is not supported by this build yet";

    /// <summary>Every option upstream StratoVirt accepts, with those this build does not implement marked.</summary>
    public static readonly OptionSpec[] Specs =
    [
        new("-name", Arity.Value),
        new("-machine", Arity.Value),
        new("-accel", Arity.Value),
        new("-smp", Arity.Value),
        new("-cpu", Arity.Value),
        new("-m", Arity.Value),
        new("-kernel", Arity.Value),
        new("-append", Arity.Value, Repeatable: true),
        new("-initrd", Arity.Value),
        new("-serial", Arity.Value),
        new("-D", Arity.OptionalValue),
        new("-qmp", Arity.Value),
        new("-mon", Arity.Value),
        new("-S", Arity.Flag),
        new("-freeze", Arity.Flag),
        new("-no-reboot", Arity.Flag),
        new("-drive", Arity.Value, Repeatable: true),
        new("-device", Arity.Value, Repeatable: true),
        new("-netdev", Arity.Value, Repeatable: true),
        new("-chardev", Arity.Value, Repeatable: true),
        new("-object", Arity.Value, Repeatable: true),
        new("-disable-seccomp", Arity.Flag),
        new("-daemonize", Arity.Flag),
        new("-pidfile", Arity.Value),
        new("-uuid", Arity.Value),
        new("-mem-path", Arity.Value),
        new("-mem-prealloc", Arity.Flag),
        new("-help", Arity.Flag),
        new("-h", Arity.Flag),
        new("-version", Arity.Flag),
        new("-V", Arity.Flag),
        new("-incoming", Arity.Value),
        // Options later parts of the project implement.

        new("-numa", Arity.Value, Unsupported: Later),
        new("-trace", Arity.Value, Unsupported: Later),
        new("-global", Arity.Value, Repeatable: true),
        new("-smbios", Arity.Value, Unsupported: "applies to the standard VM only, which this build does not provide"),
        new("-battery", Arity.Flag, Unsupported: "applies to the aarch64 standard VM only"),
        new("-vnc", Arity.Value, Unsupported: "applies to the standard VM only, which this build does not provide"),
        new("-display", Arity.Value, Ignored: true),
        // Accepted and ignored for libvirt compatibility, as upstream does.
        new("-overcommit", Arity.Value, Ignored: true),
        new("-no-user-config", Arity.Flag, Ignored: true),
        new("-nodefaults", Arity.Flag, Ignored: true),
        new("-sandbox", Arity.Value, Ignored: true),
        new("-msg", Arity.Value, Ignored: true),
        new("-rtc", Arity.Value, Ignored: true),
        new("-boot", Arity.Value, Ignored: true),
        new("-nographic", Arity.Flag, Ignored: true),
        new("-realtime", Arity.Value, Ignored: true),
        new("-usb", Arity.Flag, Ignored: true),
        new("-no-shutdown", Arity.Flag, Ignored: true),
    ];

    /// <summary>-incoming file:&lt;dir&gt;[,mapped=true|false]: restore a snapshot (the microVM takes no other
    /// source, as upstream).</summary>
    private static IncomingSnapshot ParseIncoming(string value)
    {
        if (!value.StartsWith("file:", StringComparison.Ordinal))
            throw new UsageException($"option -incoming: '{value}' is not supported; the microVM restores only from file:<directory>");
        var parts = value["file:".Length..].Split(',');
        if (parts[0].Length == 0) throw new UsageException("option -incoming: the directory is empty");
        bool mapped = true;
        foreach (string part in parts.AsSpan(1))
        {
            mapped = part switch
            {
                "mapped=true" or "mapped=on" => true,
                "mapped=false" or "mapped=off" => false,
                _ => throw new UsageException($"option -incoming: '{part}' is not mapped=true or mapped=false"),
            };
        }
        return new IncomingSnapshot(parts[0], mapped);
    }

    /// <summary>-global pcie-root-port.fast-unplug=0|1 (Kata's and Kuasar's only use of -global); returns whether
    /// fast unplug is on.</summary>
    private static bool ParseGlobals(Dictionary<string, List<string>> o, MachineType machine)
    {
        bool fast = false;
        foreach (string value in o.GetValueOrDefault("-global") ?? [])
        {
            fast = value switch
            {
                "pcie-root-port.fast-unplug=1" or "pcie-root-port.fast-unplug=on" => true,
                "pcie-root-port.fast-unplug=0" or "pcie-root-port.fast-unplug=off" => false,
                _ => throw new UsageException($"option -global: '{value}' is not supported (only pcie-root-port.fast-unplug=0|1)"),
            };
            if (machine != MachineType.Q35)
                throw new UsageException("option -global: pcie-root-port.fast-unplug applies to the standard VM (-machine q35)");
        }
        return fast;
    }

    public static bool WantsHelp(Dictionary<string, List<string>> o) => o.ContainsKey("-help") || o.ContainsKey("-h");
    public static bool WantsVersion(Dictionary<string, List<string>> o) => o.ContainsKey("-version") || o.ContainsKey("-V");

    /// <summary>Builds the configuration; <paramref name="hostMemory"/> is the host's RAM in bytes (0 if unknown),
    /// and <paramref name="registry"/> the virtio device types -device knows (by default this build's).</summary>
    public static Options FromArgs(Dictionary<string, List<string>> o, ulong hostMemory, VirtioDeviceRegistry? registry = null)
    {
        string? One(string name) => o.TryGetValue(name, out var v) ? v[0] : null;

        var machine = ParseMachine(One("-machine"));
        if (One("-accel") is { } accel && accel is not ("kvm" or "kvm:tcg"))
            throw new UsageException($"option -accel: '{accel}' is not supported; only kvm is");
        if (One("-cpu") is { } cpu && cpu.Split(',')[0] != "host")
            throw new UsageException($"option -cpu: '{cpu}' is not supported; only host is");

        // Kata and libvirt pass the sandbox's UUID; upstream's microvm keeps it nowhere (its only use is the
        // standard VM's SMBIOS, which has a -smbios field of its own), so it is checked and then dropped.
        if (One("-uuid") is { } uuid && !Guid.TryParseExact(uuid, "D", out _))
            throw new UsageException($"option -uuid: '{uuid}' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hex digits)");

        var flash = FlashOptions.Take(o, machine.Type);
        string? kernel = One("-kernel");
        if (kernel is null && flash.Count == 0)
            throw new UsageException(machine.Type == MachineType.Q35
                ? "option -kernel is required without firmware (give -kernel, or OVMF as -drive file=OVMF_CODE.fd,if=pflash,unit=0,readonly=true)"
                : "option -kernel is required (the machine boots a kernel directly)");
        var devices = DeviceOptions.Parse(o, registry ?? VirtioDeviceRegistry.Default, machine.Type);
        var monitors = ParseMonitors(One("-qmp"), devices.Monitor);
        var (memorySize, ram) = MemoryOptions.Resolve(machine.MemShare, machine.MemoryBackend, devices.MemoryBackends,
            One("-mem-path"), o.ContainsKey("-mem-prealloc"), One("-m"), hostMemory);
        var config = new MachineConfig
        {
            Name = One("-name") ?? "StratoVirt",
            Type = machine.Type,
            KernelPath = kernel,
            Pflash = flash,
            InitrdPath = One("-initrd"),
            CommandLine = o.TryGetValue("-append", out var append) ? string.Join(' ', append) : "",
            MemorySize = memorySize,
            Ram = ram,
            Cpus = One("-smp") is { } smp ? ParseSmp(smp) : CpuTopology.Single(1),
            Serial = devices.Serial,
            Acpi = machine.Acpi,
            HotplugSlots = monitors.Count > 0 && machine.Type == MachineType.MicroVm,
            DumpGuestCore = machine.DumpGuestCore,
            StartPaused = o.ContainsKey("-S") || o.ContainsKey("-freeze"),
            NoReboot = o.ContainsKey("-no-reboot"),
            Seccomp = !o.ContainsKey("-disable-seccomp"),
            Devices = devices.Devices,
            RootPorts = devices.RootPorts,
            FastUnplug = ParseGlobals(o, machine.Type),
            IoThreads = devices.IoThreads,
            Incoming = One("-incoming") is { } incoming ? ParseIncoming(incoming) : null,
        };
        // As upstream: the daemon has no terminal, and its stdin and stdout are /dev/null.
        if (o.ContainsKey("-daemonize") && config.Serial is ChardevConfig.Stdio)
            throw new UsageException("option -serial: stdio cannot be used with -daemonize");
        string? log = One("-D");
        string? pidFile = One("-pidfile");
        if (pidFile is { Length: 0 }) throw new UsageException("option -pidfile: the path is empty");
        return new Options(config, string.IsNullOrEmpty(log) ? null : log, o.ContainsKey("-D"))
        {
            Monitors = monitors,
            Daemonize = o.ContainsKey("-daemonize"),
            PidFile = pidFile,
        };
    }

    /// <summary>What -machine says: the machine type, ACPI tables or not, guest RAM in core dumps or not, mem-share=
    /// (null when not given) and the id of the memory-backend object holding guest RAM.</summary>
    internal sealed record MachineOptions(MachineType Type, bool Acpi, bool DumpGuestCore, bool? MemShare, string? MemoryBackend);

    internal static MachineOptions ParseMachine(string? text)
    {
        if (text is null) throw new UsageException("option -machine is required (use -machine microvm)");
        var v = new OptionValue("-machine", text, "type",
            ["type", "dump-guest-core", "mem-share", "memory-backend", "accel", "usb", "acpi"]);
        string type = v.Get("type") ?? throw new UsageException("option -machine: type is missing (use microvm)");
        if (type is not ("microvm" or "q35"))
            throw new UsageException(type is "virt" or "none"
                ? $"option -machine: type '{type}' is not supported by this build; use microvm or q35"
                : $"option -machine: unknown machine type '{type}' (use microvm or q35)");
        bool dumpGuestCore = v.GetBool("dump-guest-core", true);
        bool? memShare = v.Has("mem-share") ? v.GetBool("mem-share", false) : null;
        if (v.Get("memory-backend") is { Length: 0 }) throw new UsageException("option -machine: memory-backend= needs an id");
        if (v.Get("accel") is { } accel && accel is not ("kvm" or "kvm:tcg"))
            throw new UsageException($"option -machine: accel={accel} is not supported; only kvm is");
        if (v.Get("usb") is { } usb && usb != "off") throw new UsageException("option -machine: usb must be off");
        return new MachineOptions(type == "q35" ? MachineType.Q35 : MachineType.MicroVm, v.GetBool("acpi", true),
            dumpGuestCore, memShare, v.Get("memory-backend"));
    }

    internal static ulong ParseMemory(string text, ulong hostMemory)
    {
        var v = new OptionValue("-m", text, "size", ["size", "maxmem"]);
        string size = v.Get("size") ?? throw new UsageException("option -m: size is missing");
        ulong bytes = ParseSize(size, "-m");
        CheckMemorySize(bytes, "-m", hostMemory, size);
        if (v.Get("maxmem") is { } maxmem && ParseSize(maxmem, "-m maxmem") < bytes)
            throw new UsageException($"option -m: maxmem={maxmem} is smaller than the memory size {size}");
        return bytes;
    }

    /// <summary>Guest RAM must lie between 128 MiB and 512 GiB and fit the host's RAM (when known). The
    /// message names the size as the user wrote it when <paramref name="asWritten"/> is given.</summary>
    internal static void CheckMemorySize(ulong bytes, string option, ulong hostMemory, string? asWritten = null)
    {
        string size = asWritten ?? $"{bytes >> 20} MiB";
        if (bytes == 0) throw new UsageException($"option {option}: memory size must be greater than zero");
        if (bytes < MinMemory) throw new UsageException($"option {option}: memory size {size} is below the minimum of 128 MiB");
        if (bytes > MaxMemory) throw new UsageException($"option {option}: memory size {size} exceeds the maximum of 512 GiB");
        if (hostMemory != 0 && bytes > hostMemory)
            throw new UsageException($"option {option}: memory size {size} exceeds this host's {hostMemory >> 20} MiB of RAM");
    }

    /// <summary>A size with an optional K/M/G/T suffix (upper or lower case, optional B); no suffix means MiB.</summary>
    internal static ulong ParseSize(string text, string option)
    {
        string t = text.Trim();
        if (t.EndsWith("B", StringComparison.OrdinalIgnoreCase) && t.Length > 1 && char.IsLetter(t[^2])) t = t[..^1];
        int shift = 20;
        if (t.Length == 0 || !char.IsAsciiDigit(t[0]) || t.AsSpan(..^1).ContainsAnyExceptInRange('0', '9'))
            throw new UsageException($"option {option}: '{text}' is not a size");
        if (char.IsLetter(t[^1]))
        {
            shift = char.ToUpperInvariant(t[^1]) switch
            {
                'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40,
                _ => throw new UsageException($"option {option}: '{text}' has an unknown unit"),
            };
            t = t[..^1];
        }
        if (!ulong.TryParse(t, System.Globalization.NumberStyles.None, null, out ulong n))
            throw new UsageException($"option {option}: '{text}' is not a size");
        if (n > (ulong.MaxValue >> shift)) throw new UsageException($"option {option}: '{text}' is too large");
        return n << shift;
    }

    internal static CpuTopology ParseSmp(string text)
    {
        var v = new OptionValue("-smp", text, "cpus", ["cpus", "maxcpus", "sockets", "dies", "clusters", "cores", "threads"]);
        const int Max = CpuTopology.Limit;
        int cpus = v.Has("cpus")
            ? ParseCount(v.Get("cpus")!, "cpus")
            : throw new UsageException("option -smp: cpus is missing");
        int maxcpus = v.Has("maxcpus") ? ParseCount(v.Get("maxcpus")!, "maxcpus") : cpus;
        if (maxcpus < cpus) throw new UsageException($"option -smp: maxcpus={maxcpus} is less than cpus={cpus}");
        int sockets = v.GetInt("sockets", 1, Max) ?? 0, dies = v.GetInt("dies", 1, Max) ?? 1;
        int clusters = v.GetInt("clusters", 1, Max) ?? 1, threads = v.GetInt("threads", 1, Max) ?? 1;
        int cores = v.GetInt("cores", 1, Max) ?? 0;
        // Fill in what was not given so that the product covers maxcpus, preferring cores as upstream does.
        if (sockets == 0 && cores == 0) { sockets = 1; cores = Math.Max(1, maxcpus / (dies * clusters * threads)); }
        else if (sockets == 0) sockets = Math.Max(1, maxcpus / (dies * clusters * cores * threads));
        else if (cores == 0) cores = Math.Max(1, maxcpus / (sockets * dies * clusters * threads));
        long product = (long)sockets * dies * clusters * cores * threads;
        if (product != maxcpus)
            throw new UsageException(
                $"option -smp: sockets({sockets}) * dies({dies}) * clusters({clusters}) * cores({cores}) * threads({threads}) = {product} must equal maxcpus ({maxcpus})");
        return new CpuTopology(cpus, maxcpus, sockets, dies, clusters, cores, threads);

        static int ParseCount(string s, string key)
        {
            if (!int.TryParse(s, System.Globalization.NumberStyles.None, null, out int n))
                throw new UsageException($"option -smp: {key}={s} is not a number");
            if (n < 1 || n > Max) throw new UsageException($"option -smp: {key}={s} is out of range 1-{Max}");
            return n;
        }
    }

    /// <summary>-qmp's endpoint and -mon's, which must differ.</summary>
    private static List<MonitorEndpoint> ParseMonitors(string? qmp, MonitorEndpoint? mon)
    {
        var monitors = new List<MonitorEndpoint>();
        if (qmp is not null) monitors.Add(ParseQmp(qmp));
        if (mon is null) return monitors;
        if (monitors.Contains(mon)) throw new UsageException($"option -mon: {mon} is the -qmp socket too");
        monitors.Add(mon);
        return monitors;
    }

    internal static MonitorEndpoint ParseQmp(string text)
    {
        try { return MonitorEndpoint.ParseQmp(text); }
        catch (FormatException e) { throw new UsageException($"option -qmp: {e.Message}"); }
    }
}
