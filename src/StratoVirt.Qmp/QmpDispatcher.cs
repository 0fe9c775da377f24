using System.Text.Unicode;
using System.Text.Json;
using StratoVirt.Machine;
using StratoVirt.Sys;

namespace StratoVirt.Qmp;

/// <summary>Per-connection protocol state.</summary>
internal sealed class QmpSession(LeakBucket bucket, bool canPassFds)
{
    /// <summary>Set by the client's first command (normally qmp_capabilities); events wait for it.</summary>
    public volatile bool Negotiated;

    /// <summary>Upstream's flow control for this connection.</summary>
    public LeakBucket Bucket { get; } = bucket;

    /// <summary>True on a unix socket, where SCM_RIGHTS can carry fds; false over TCP.</summary>
    public bool CanPassFds { get; } = canPassFds;

    /// <summary>The fd that came with the request being handled, if any; getfd takes it, and the server closes
    /// whatever is left once the request is answered.</summary>
    public FileDescriptor? ReceivedFd;
}

/// <summary>A command's outcome: a return value writer or an error, and what to run once the reply is queued.</summary>
internal readonly record struct QmpReply(Action<Utf8JsonWriter>? WriteReturn, QmpErrorBody? Error, Action? After = null)
{
    public static QmpReply Ok(IQmpValue value, Action? after = null) => new(value.WriteTo, null, after);

    public static QmpReply Ok<T>(T[] items) where T : IQmpValue => new(w => QmpJson.WriteArray(w, items), null);

    public static QmpReply Fail(string desc, string errorClass = QmpDispatcher.GenericError) =>
        new(null, new QmpErrorBody(errorClass, desc));
}

/// <summary>
/// Turns one JSON request into its JSON reply. Knows nothing of sockets.
/// <para>Negotiation: upstream StratoVirt accepts <c>qmp_capabilities</c> but does not require it, and its
/// scripts send commands straight after the greeting; QEMU clients (libvirt, Kata's govmm) always negotiate
/// first. So every command is served from the start, <c>qmp_capabilities</c> answers <c>{}</c> whenever it
/// comes, and events start after the client's first command — for a QEMU client that is exactly QEMU's
/// behaviour (no event before the negotiation reply), and an upstream-style script still gets its events.</para>
/// </summary>
internal sealed partial class QmpDispatcher
{
    public const string GenericError = "GenericError", CommandNotFound = "CommandNotFound",
        DeviceNotActive = "DeviceNotActive", OperationThrottled = "OperationThrottled";

    /// <summary>The probe answers, parsed once (and so written compact, on one line).</summary>
    private static readonly (string Name, JsonElement Return)[] Probes =
        Array.ConvertAll(QmpCatalog.Probes, p => (p.Name, JsonDocument.Parse(p.Return).RootElement.Clone()));

    /// <summary>Every command, one entry each. A handler gets the request's <c>arguments</c> (default when
    /// absent) and the session; build it with <see cref="NoArgs"/> or <see cref="Args{T}"/> so that arguments
    /// are checked the same strict way everywhere.</summary>
    private readonly Dictionary<string, Func<JsonElement, QmpSession, QmpReply>> _commands;
    private readonly IMachineControl _machine;
    private readonly IHotplug? _hotplug;
    private readonly QmpFdStore _fds;

    /// <param name="hotplug">The machine's hotplug; null: the hotplug commands are not offered.</param>
    /// <param name="fds">Where getfd stores fds (the dispatcher does not own it).</param>
    public QmpDispatcher(IMachineControl machine, IHotplug? hotplug, QmpFdStore fds)
    {
        _machine = machine;
        _hotplug = hotplug;
        _fds = fds;
        _commands = new()
        {
            ["qmp_capabilities"] = NoArgs(s => Ok(() => s.Negotiated = true)),
            ["quit"] = NoArgs(_ => Ok(_machine.Quit)),
            ["system_reset"] = NoArgs(_ => Ok(_machine.SystemReset)),
            ["system_powerdown"] = NoArgs(_ => Ok(_machine.SystemPowerdown)),
            ["query-status"] = NoArgs(_ => QmpReply.Ok(_machine.Running ? new QmpStatus(true, false, "running")
                : new QmpStatus(false, false, "paused"))),
            ["stop"] = NoArgs(_ => Ok(_machine.Stop)),
            ["cont"] = NoArgs(_ => Ok(_machine.Cont)),
            ["migrate"] = Args(MigrateArguments, (a, _) => Migrate(a.String("uri"))),
            ["query-migrate"] = NoArgs(_ => QmpReply.Ok(new QmpMigrationInfo(_machine.SnapshotStatus.Status,
                _machine.SnapshotStatus.Error))),
            ["query-version"] = NoArgs(_ => QmpReply.Ok(QmpServer.Version)),
            ["query-commands"] = NoArgs(_ => QmpReply.Ok(CommandList())),
            ["balloon"] = Args(BalloonArguments, (a, _) => Balloon(a.UInt64("value"))),
            ["query-balloon"] = NoArgs(_ => QueryBalloon()),
            ["query-cpus"] = NoArgs(_ => QmpReply.Ok(Cpus())),
            ["query-pci"] = NoArgs(_ => QmpReply.Ok(QmpPciInfo.FromRootBus(_machine.PciFunctions))),
            ["query-hotpluggable-cpus"] = NoArgs(_ => QmpReply.Ok(HotpluggableCpus())),
            // Upstream's microVM logs its memory layout and returns nothing.
            ["query-mem"] = NoArgs(_ => Ok()),
            ["getfd"] = Args(FdNameArguments, (a, s) => GetFd(a.String("fdname"), s)),
            ["closefd"] = Args(FdNameArguments, (a, _) => CloseFd(a.String("fdname"))),
            ["query-target"] = NoArgs(_ => QmpReply.Ok(new QmpTarget("x86_64"))),
            ["query-kvm"] = NoArgs(_ => QmpReply.Ok(new QmpKvm(true, true))),
            ["query-machines"] = NoArgs(_ => QmpReply.Ok(
                new[] { new QmpMachine("microvm", 254, false, true) })),
            ["query-events"] = NoArgs(_ => QmpReply.Ok(Events)),
            // Like upstream's, this probe takes a typename and ignores anything else.
            ["device-list-properties"] = (a, _) => QmpReply.Ok(DeviceProperties(a)),
        };
        foreach (var (name, value) in Probes) _commands[name] = (_, _) => new QmpReply(value.WriteTo, null);
        AddHotplugCommands();
    }

    /// <summary>blockdev-add/del, netdev_add/del and device_add/del, where the machine supports hotplug.</summary>
    partial void AddHotplugCommands();

    /// <summary>A command without arguments: any argument is refused as unexpected.</summary>
    internal static Func<JsonElement, QmpSession, QmpReply> NoArgs(Func<QmpSession, QmpReply> run) =>
        (arguments, session) => QmpArguments.CheckNone(arguments) is { } error ? QmpReply.Fail(error) : run(session);

    /// <summary>A command whose arguments are checked, strictly (<see cref="QmpArguments"/>), against
    /// <paramref name="type"/>.</summary>
    internal static Func<JsonElement, QmpSession, QmpReply> Args(QmpType type, Func<QmpArgs, QmpSession, QmpReply> run) =>
        (arguments, session) => QmpArguments.TryParse(arguments, type, out var parsed, out string? error)
            ? run(parsed, session)
            : QmpReply.Fail(error);

    private static readonly QmpType MigrateArguments = QmpType.Object(QmpMember.Req("uri", QmpType.String));
    private static readonly QmpType BalloonArguments = QmpType.Object(QmpMember.Req("value", QmpType.UInt64));

    /// <summary>getfd and closefd.</summary>
    private static readonly QmpType FdNameArguments = QmpType.Object(QmpMember.Req("fdname", QmpType.String));

    /// <summary>migrate: on the microVM only to a file: directory, a snapshot of the paused VM (as upstream).</summary>
    private QmpReply Migrate(string uri)
    {
        if (!uri.StartsWith("file:", StringComparison.Ordinal) || uri.Length == "file:".Length)
            return QmpReply.Fail($"Invalid uri '{uri}': the microVM migrates only to file:<directory>");
        return _machine.TrySnapshot(uri["file:".Length..], out string? error) ? Ok() : QmpReply.Fail(error!);
    }

    private static QmpReply Ok(Action? after = null) => QmpReply.Ok(QmpEmpty.Value, after);

    /// <summary>The reply to <paramref name="request"/> (one line, newline-terminated) and what to run after it
    /// is queued.</summary>
    public byte[] Handle(ReadOnlyMemory<byte> request, QmpSession session, out Action? after)
    {
        after = null;
        // The parser accepts invalid UTF-8 inside strings and fails only when one is decoded, so the whole text
        // is checked first (QEMU's lexer rejects it the same way).
        if (!Utf8.IsValid(request.Span))
            return Serialize(session.Bucket.TryAdmit() ? QmpReply.Fail(InvalidUtf8) : Throttled(session), default);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(request);
        }
        catch (JsonException e)
        {
            return Serialize(session.Bucket.TryAdmit() ? QmpReply.Fail($"JSON parse error, {e.Message}") : Throttled(session), default);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (!Decodes(root))
                return Serialize(session.Bucket.TryAdmit() ? QmpReply.Fail(InvalidEscape) : Throttled(session), default);
            JsonElement id = default;
            if (root.ValueKind == JsonValueKind.Object) root.TryGetProperty("id", out id);
            if (!session.Bucket.TryAdmit()) return Serialize(Throttled(session), id);
            if (root.ValueKind != JsonValueKind.Object)
                return Serialize(QmpReply.Fail("QMP input must be a JSON object"), default);
            QmpReply reply;
            try
            {
                reply = Execute(root, session);
            }
            catch (Exception e)
            {
                // A command that fails unexpectedly fails alone: the client gets an error, the VM runs on.
                string name = CommandName(root);
                Log.Warn($"qmp: {name} failed: {e.GetType().Name}: {e.Message}");
                reply = QmpReply.Fail($"{name} failed: {e.Message}");
            }
            after = reply.After;
            return Serialize(reply, id);
        }
    }

    /// <summary>The request's command name for a message (the request decoded, see <see cref="Decodes"/>).</summary>
    private static string CommandName(JsonElement root) =>
        root.TryGetProperty("execute", out var execute) && execute.ValueKind == JsonValueKind.String
            ? execute.GetString()! : "the command";

    /// <summary>Whether every name and string in <paramref name="element"/> decodes: a \u escape of a lone
    /// surrogate is valid JSON text but no string, and the parser finds that out only when the string is read.
    /// QMP requests are small and rare, so each is decoded once up front rather than guarded everywhere.</summary>
    private static bool Decodes(JsonElement element)
    {
        try
        {
            return DecodesOrThrows(element);
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        static bool DecodesOrThrows(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.String:
                    _ = e.GetString();
                    return true;
                case JsonValueKind.Object:
                    foreach (var member in e.EnumerateObject())
                    {
                        _ = member.Name;
                        if (!DecodesOrThrows(member.Value)) return false;
                    }
                    return true;
                case JsonValueKind.Array:
                    foreach (var item in e.EnumerateArray())
                        if (!DecodesOrThrows(item)) return false;
                    return true;
                default:
                    return true;
            }
        }
    }

    /// <summary>QEMU's reply to bytes that are not UTF-8 inside a JSON string.</summary>
    internal const string InvalidUtf8 = "JSON parse error, invalid UTF-8 sequence in string";

    /// <summary>The reply to a \u escape that decodes to no character (a lone surrogate).</summary>
    internal const string InvalidEscape = "JSON parse error, invalid escape sequence in string";

    private static QmpReply Throttled(QmpSession session) => QmpReply.Fail(
        $"More than {session.Bucket.PerSecond} requests received during 1 second", OperationThrottled);

    private QmpReply Execute(JsonElement root, QmpSession session)
    {
        if (!root.TryGetProperty("execute", out var execute))
            return QmpReply.Fail("QMP input lacks member 'execute'");
        if (execute.ValueKind != JsonValueKind.String)
            return QmpReply.Fail("QMP input member 'execute' must be a string");
        var arguments = default(JsonElement);
        foreach (var member in root.EnumerateObject())
        {
            if (member.Name is "execute" or "id") continue;
            if (member.Name != "arguments") return QmpReply.Fail($"QMP input member '{member.Name}' is unexpected");
            if (member.Value.ValueKind != JsonValueKind.Object)
                return QmpReply.Fail("QMP input member 'arguments' must be an object");
            arguments = member.Value;
        }
        string name = execute.GetString()!;
        if (!_commands.TryGetValue(name, out var command))
        {
            return QmpCatalog.Unsupported.TryGetValue(name, out string? text)
                ? QmpReply.Fail(text ?? $"{name} is not supported by this machine")
                : QmpReply.Fail($"The command {name} has not been found", CommandNotFound);
        }
        session.Negotiated = true;
        return command(arguments, session);
    }

    /// <summary>The events this server can send.</summary>
    private static readonly QmpNamed[] Events =
        [new("SHUTDOWN"), new("RESET"), new("POWERDOWN"), new("STOP"), new("RESUME"), new("DEVICE_DELETED"), new("BALLOON_CHANGED"),
         new("BLOCK_IO_ERROR"), new("DEVICE_BACKEND_DISCONNECTED")];

    private QmpCpuInfo[] Cpus()
    {
        var threads = _machine.CpuThreads;
        var cpus = new QmpCpuInfo[threads.Count];
        for (int i = 0; i < cpus.Length; i++)
        {
            var c = threads[i];
            cpus[i] = new QmpCpuInfo(c.Index, c.Index == 0, false, QomPath(c.Index), c.ThreadId, new QmpCpuProps(c.Index, 0, 0));
        }
        return cpus;
    }

    /// <summary>Every vCPU slot, all of them present: the microVM's vCPUs are not hotpluggable, so each entry
    /// carries the qom-path of the vCPU in it (as QEMU shows plugged CPUs).</summary>
    private QmpHotpluggableCpu[] HotpluggableCpus()
    {
        var threads = _machine.CpuThreads;
        var cpus = new QmpHotpluggableCpu[threads.Count];
        for (int i = 0; i < cpus.Length; i++)
        {
            int index = threads[i].Index;
            cpus[i] = new QmpHotpluggableCpu("host-x86-cpu", 1, new QmpCpuProps(index, 0, 0), QomPath(index));
        }
        return cpus;
    }

    private static string QomPath(int index) => $"/machine/unattached/device[{index}]";

    private QmpNamed[] CommandList()
    {
        var names = new QmpNamed[_commands.Count];
        int i = 0;
        foreach (string name in _commands.Keys) names[i++] = new QmpNamed(name);
        return names;
    }

    private static QmpProperty[] DeviceProperties(JsonElement arguments)
    {
        string typename = arguments.ValueKind == JsonValueKind.Object && arguments.TryGetProperty("typename", out var t)
            && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
        var properties = new List<QmpProperty>();
        foreach (var p in QmpCatalog.DeviceProperties)
            if (typename.Contains(p.TypeContains, StringComparison.Ordinal)) properties.Add(new QmpProperty(p.Name, p.Type));
        return [.. properties];
    }

    private QmpReply GetFd(string name, QmpSession session)
    {
        if (name.Length > 0 && char.IsAsciiDigit(name[0]))
            return QmpReply.Fail("Parameter 'fdname' expects a name not starting with a digit");
        if (session.ReceivedFd is not { } fd)
            return QmpReply.Fail("No file descriptor supplied via SCM_RIGHTS");
        session.ReceivedFd = null;
        _fds.Add(name, fd);
        return Ok();
    }

    private QmpReply CloseFd(string name) =>
        _fds.Close(name) ? Ok() : QmpReply.Fail($"File descriptor named '{name}' not found");

    private QmpReply Balloon(ulong value)
    {
        if (_machine.BalloonActual is null) return QmpReply.Fail(NoBalloon, DeviceNotActive);
        return _machine.TrySetBalloon(value, out string? error)
            ? Ok()
            : QmpReply.Fail(error ?? "balloon failed");
    }

    private QmpReply QueryBalloon() => _machine.BalloonActual is { } actual
        ? QmpReply.Ok(new BalloonInfo(actual))
        : QmpReply.Fail(NoBalloon, DeviceNotActive);

    private const string NoBalloon = "No balloon device has been activated";

    /// <summary>An error reply without id, for faults outside any one request.</summary>
    public static byte[] ErrorLine(string desc) => Serialize(QmpReply.Fail(desc), default);

    /// <summary>{"return":...,"id":...} or {"error":{...},"id":...}, newline-terminated.</summary>
    private static byte[] Serialize(QmpReply reply, JsonElement id) => QmpJson.ToUtf8(w =>
    {
        w.WriteStartObject();
        if (reply.Error is { } error)
        {
            QmpJson.WriteObject(w, "error", error);
        }
        else
        {
            w.WritePropertyName("return");
            reply.WriteReturn!(w);
        }
        if (id.ValueKind != JsonValueKind.Undefined)
        {
            w.WritePropertyName("id");
            id.WriteTo(w);
        }
        w.WriteEndObject();
    }, newline: true);

    /// <summary>{"event":NAME,"data":...,"timestamp":{...}}, newline-terminated; data is omitted when null.</summary>
    public static byte[] Event(string name, IQmpValue? data, DateTimeOffset now) => QmpJson.ToUtf8(w =>
    {
        w.WriteStartObject();
        w.WriteString("event", name);
        if (data is not null) QmpJson.WriteObject(w, "data", data);
        long micros = (now - DateTimeOffset.UnixEpoch).Ticks / 10;
        w.WriteStartObject("timestamp");
        w.WriteNumber("seconds", micros / 1_000_000);
        w.WriteNumber("microseconds", micros % 1_000_000);
        w.WriteEndObject();
        w.WriteEndObject();
    }, newline: true);

    /// <summary>{"QMP":{"version":...,"capabilities":[]}}, newline-terminated.</summary>
    public static byte[] Greeting() => QmpJson.ToUtf8(w =>
    {
        w.WriteStartObject();
        w.WriteStartObject("QMP");
        QmpJson.WriteObject(w, "version", QmpServer.Version);
        w.WriteStartArray("capabilities");
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }, newline: true);
}
