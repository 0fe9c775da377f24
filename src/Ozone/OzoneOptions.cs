using StratoVirt.Sys;

namespace Ozone;

/// <summary>Bad ozone input or a sandbox step that cannot be done; the message is the whole error line.</summary>
public sealed class OzoneException(string message) : VmmException(message)
{
    /// <summary>Runs a step made of System.IO calls (copying the binary, making or deleting folders): an
    /// IOException or UnauthorizedAccessException becomes an OzoneException with the same message.</summary>
    public static void FileStep(Action step)
    {
        try { step(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new OzoneException(e.Message); }
    }
}

/// <summary>The ozone command line, parsed with upstream's rules and checked without touching the file system.</summary>
public sealed class OzoneOptions
{
    public const int MaxNameLength = 255;
    public const uint MaxId = 65535;

    public required string Name { get; init; }
    public required string ExecFile { get; init; }
    public uint Uid { get; init; }
    public uint Gid { get; init; }
    public IReadOnlyList<string> Capabilities { get; init; } = [];
    public string? NetNs { get; init; }
    public IReadOnlyList<string> Sources { get; init; } = [];
    public string? Numa { get; init; }
    public string? CpusetCpus { get; init; }
    public string? MemoryLimit { get; init; }
    public bool CleanResource { get; init; }
    /// <summary>True when "--" is given: ozone runs the binary (with -clean-resource, then cleans up after it);
    /// without it, -clean-resource alone is upstream's clean-up of an earlier run.</summary>
    public bool HasCommand { get; init; }
    /// <summary>Everything after "--": the arguments of the sandboxed binary.</summary>
    public IReadOnlyList<string> ExecArgs { get; init; } = [];

    /// <summary>The file name the binary gets inside the chroot, and the folder under /srv/ozone.</summary>
    public string ExecName => Path.GetFileName(ExecFile);

    private enum Arity { Flag, One, Many }

    private static readonly Dictionary<string, Arity> Known = new()
    {
        ["name"] = Arity.One, ["exec-file"] = Arity.One, ["exec_file"] = Arity.One, ["uid"] = Arity.One,
        ["gid"] = Arity.One, ["capability"] = Arity.One, ["netns"] = Arity.One, ["source"] = Arity.Many,
        ["numa"] = Arity.One, ["cgroup"] = Arity.Many, ["clean-resource"] = Arity.Flag,
    };

    public const string Usage = """
        ozone: a sandbox launcher for stratovirt.
        Usage: ozone -name <name> -exec-file <binary> -uid <uid> -gid <gid> [options] -- <binary arguments>
          -name <name>            unique name; the chroot is /srv/ozone/<binary name>/<name>
          -exec-file <path>       the binary to run (copied into the chroot)
          -uid <n>, -gid <n>      the user and group it runs as (0 to 65535)
          -capability <A,B>       capabilities kept in the bounding set (default: none)
          -netns <path>           a network namespace to join, e.g. /var/run/netns/<name>
          -source <file>...       files or folders bind-mounted into the chroot root (kernel, disk images)
          -numa <node>            cpuset.mems of the cgroup
          -cgroup <key=value>...  cpuset.cpus=<cpus> and/or memory.limit_in_bytes=<bytes>
          -clean-resource         with "--": remove chroot, mounts and cgroups when the binary exits;
                                  without "--": remove those of an earlier run with this name
          -h, --help              this text
        The binary runs as pid 1 of new PID, UTS, IPC and mount namespaces, inside the chroot, with no other
        device nodes than kvm, net/tun, urandom, null (and vhost-net, vhost-vsock if the host has them).

        """;

    /// <summary>True when the arguments ask for the help text.</summary>
    public static bool WantsHelp(IReadOnlyList<string> args)
    {
        foreach (var a in args)
        {
            if (a == "--") return false;
            if (a is "-h" or "-help" or "--help") return true;
        }
        return false;
    }

    public static OzoneOptions Parse(IReadOnlyList<string> args)
    {
        int separator = -1;
        for (int i = 0; i < args.Count; i++)
            if (args[i] == "--") { separator = i; break; }
        int optionEnd = separator < 0 ? args.Count : separator;

        var values = new Dictionary<string, List<string>>();
        List<string>? current = null;
        for (int i = 0; i < optionEnd; i++)
        {
            string a = args[i];
            if (a.StartsWith('-') && a.Length > 1)
            {
                string key = a[1..];
                if (!Known.ContainsKey(key)) throw new OzoneException($"unknown option '{a}' (see ozone -h)");
                if (key == "exec_file") key = "exec-file";
                if (values.ContainsKey(key)) throw new OzoneException($"option '-{key}' is given more than once");
                values[key] = current = [];
            }
            else if (current is null)
                throw new OzoneException($"unexpected argument '{a}' before any option");
            else
                current.Add(a);
        }

        foreach (var (key, list) in values)
        {
            var arity = Known[key];
            if (arity == Arity.Flag && list.Count > 0)
                throw new OzoneException($"option '-{key}' takes no value (got '{list[0]}')");
            if (arity != Arity.Flag && list.Count == 0) throw new OzoneException($"option '-{key}' needs a value");
            if (arity == Arity.One && list.Count > 1)
                throw new OzoneException($"option '-{key}' takes one value (got '{list[0]}' and '{list[1]}')");
        }
        foreach (var required in (string[])["name", "exec-file", "uid", "gid"])
            if (!values.ContainsKey(required)) throw new OzoneException($"option '-{required}' is required");

        string? One(string key) => values.TryGetValue(key, out var v) ? v[0] : null;

        string name = One("name")!;
        if (name.Length > MaxNameLength) throw new OzoneException($"-name is longer than {MaxNameLength} characters");
        if (name is "." or ".." || name.Contains('/') || name.Contains('\0'))
            throw new OzoneException($"-name '{name}' must be a plain file name (no '/', not '.' or '..')");
        string execFile = One("exec-file")!;
        if (Path.GetFileName(execFile) is "" or "." or "..")
            throw new OzoneException($"-exec-file '{execFile}' does not name a file");

        string? cpus = null, memory = null;
        if (values.TryGetValue("cgroup", out var cgroups))
        {
            foreach (var setting in cgroups)
            {
                int eq = setting.IndexOf('=');
                if (eq <= 0 || eq == setting.Length - 1 || setting.IndexOf('=', eq + 1) >= 0)
                    throw new OzoneException($"-cgroup '{setting}' is not <key>=<value>");
                string key = setting[..eq], value = setting[(eq + 1)..];
                switch (key)
                {
                    case "cpuset.cpus" when cpus is null: cpus = CheckCpuList(value, "cpuset.cpus"); break;
                    case "memory.limit_in_bytes" when memory is null: memory = CheckMemory(value); break;
                    case "cpuset.cpus" or "memory.limit_in_bytes":
                        throw new OzoneException($"-cgroup {key} is given more than once");
                    default:
                        throw new OzoneException($"-cgroup key '{key}' is not supported (cpuset.cpus, memory.limit_in_bytes)");
                }
            }
        }

        var execArgs = new string[separator < 0 ? 0 : args.Count - separator - 1];
        for (int i = 0; i < execArgs.Length; i++) execArgs[i] = args[separator + 1 + i];

        string? capability = One("capability");
        return new OzoneOptions
        {
            Name = name,
            ExecFile = execFile,
            Uid = ParseId(One("uid")!, "uid"),
            Gid = ParseId(One("gid")!, "gid"),
            Capabilities = capability is null ? [] : CapabilitySet.ParseNames(capability),
            NetNs = One("netns"),
            Sources = values.TryGetValue("source", out var sources) ? sources : [],
            Numa = One("numa") is { } numa ? CheckCpuList(numa, "-numa") : null,
            CpusetCpus = cpus,
            MemoryLimit = memory,
            CleanResource = values.ContainsKey("clean-resource"),
            HasCommand = separator >= 0,
            ExecArgs = execArgs,
        };
    }

    private static uint ParseId(string text, string what)
    {
        if (!uint.TryParse(text, System.Globalization.NumberStyles.None, null, out uint id))
            throw new OzoneException($"-{what} '{text}' is not a number");
        if (id > MaxId) throw new OzoneException($"-{what} {id} is above {MaxId}");
        return id;
    }

    /// <summary>A cpuset list such as "0-3,8": digits, commas and dashes.</summary>
    private static string CheckCpuList(string value, string what)
    {
        foreach (var part in value.Split(','))
        {
            var ends = part.Split('-');
            if (ends.Length > 2 || Array.Exists(ends, e => e.Length == 0 || e.AsSpan().ContainsAnyExceptInRange('0', '9')))
                throw new OzoneException($"{what} '{value}' is not a list of numbers and ranges such as 0-3,8");
        }
        return value;
    }

    /// <summary>Bytes with an optional K, M or G suffix, or -1 for no limit (as cgroup v1 takes it).</summary>
    private static string CheckMemory(string value)
    {
        string digits = value.Length > 1 && "kKmMgG".Contains(value[^1]) ? value[..^1] : value;
        if (value != "-1" && (digits.Length == 0 || digits.AsSpan().ContainsAnyExceptInRange('0', '9')))
            throw new OzoneException($"memory.limit_in_bytes '{value}' is not a byte count (e.g. 268435456, 256M or -1)");
        return value;
    }
}
