using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace StratoVirt.Machine.Qmp;

/// <summary>Per-connection protocol state.</summary>
internal sealed class QmpSession
{
    /// <summary>Set once qmp_capabilities has been answered; commands and events wait for it.</summary>
    public volatile bool Negotiated;
}

/// <summary>A command's outcome: a return value writer or an error, and what to run once the reply is queued.</summary>
internal readonly record struct QmpReply(Action<Utf8JsonWriter>? WriteReturn, QmpErrorBody? Error, Action? After = null)
{
    public static QmpReply Ok<T>(T value, JsonTypeInfo<T> info, Action? after = null) =>
        new(w => JsonSerializer.Serialize(w, value, info), null, after);

    public static QmpReply Fail(string desc, string errorClass = QmpDispatcher.GenericError) =>
        new(null, new QmpErrorBody(errorClass, desc));
}

/// <summary>Turns one JSON request into its JSON reply. Knows nothing of sockets.</summary>
internal sealed partial class QmpDispatcher
{
    public const string GenericError = "GenericError", CommandNotFound = "CommandNotFound";

    private static readonly QmpEmpty Empty = new();

    /// <summary>Quotes and non-ASCII stay readable in replies (QMP clients and lab scripts grep them); the
    /// default encoder would write ' as \u0027.</summary>
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly Dictionary<string, Func<JsonElement, QmpSession, QmpReply>> _commands;
    private readonly IQmpCommands _machine;

    public QmpDispatcher(IQmpCommands machine)
    {
        _machine = machine;
        _commands = new()
        {
            ["qmp_capabilities"] = (_, s) => QmpReply.Ok(Empty, QmpJsonContext.Default.QmpEmpty, () => s.Negotiated = true),
            ["quit"] = (_, _) => QmpReply.Ok(Empty, QmpJsonContext.Default.QmpEmpty, _machine.Quit),
            ["system_reset"] = (_, _) => QmpReply.Ok(Empty, QmpJsonContext.Default.QmpEmpty, _machine.SystemReset),
            ["system_powerdown"] = (_, _) => QmpReply.Ok(Empty, QmpJsonContext.Default.QmpEmpty, _machine.SystemPowerdown),
            ["query-status"] = (_, _) => QmpReply.Ok(_machine.Running ? new QmpStatus(true, false, "running")
                : new QmpStatus(false, false, "paused"), QmpJsonContext.Default.QmpStatus),
            ["stop"] = (_, _) => QmpReply.Ok(Empty, QmpJsonContext.Default.QmpEmpty, _machine.Stop),
            ["cont"] = (_, _) => QmpReply.Ok(Empty, QmpJsonContext.Default.QmpEmpty, _machine.Cont),
            ["query-version"] = (_, _) => QmpReply.Ok(QmpServer.Version, QmpJsonContext.Default.QmpVersion),
            ["query-commands"] = (_, _) => QmpReply.Ok(CommandList(), QmpJsonContext.Default.QmpCommandInfoArray),
            ["balloon"] = (a, _) => Balloon(a),
            ["query-balloon"] = (_, _) => QueryBalloon(),
            ["query-cpus"] = (_, _) => QmpReply.Ok(Cpus(), QmpJsonContext.Default.QmpCpuInfoArray),
            // libvirt's and Kata's probes: fixed answers for this machine.
            ["query-target"] = (_, _) => QmpReply.Ok(new QmpTarget("x86_64"), QmpJsonContext.Default.QmpTarget),
            ["query-kvm"] = (_, _) => QmpReply.Ok(new QmpKvm(true, true), QmpJsonContext.Default.QmpKvm),
            ["query-machines"] = (_, _) => QmpReply.Ok(
                new[] { new QmpMachine("microvm", 254, false, true) }, QmpJsonContext.Default.QmpMachineArray),
            ["query-events"] = (_, _) => QmpReply.Ok(Events, QmpJsonContext.Default.QmpNamedArray),
        };
        AddHotplugCommands();
    }

    /// <summary>blockdev-add/del, netdev_add/del and device_add/del, where the machine supports hotplug.</summary>
    partial void AddHotplugCommands();

    /// <summary>The reply to <paramref name="request"/> (one line, newline-terminated) and what to run after it
    /// is queued.</summary>
    public byte[] Handle(ReadOnlyMemory<byte> request, QmpSession session, out Action? after)
    {
        after = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(request);
        }
        catch (JsonException e)
        {
            return Serialize(QmpReply.Fail($"JSON parse error, {e.Message}"), default);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return Serialize(QmpReply.Fail("QMP input must be a JSON object"), default);
            root.TryGetProperty("id", out var id);
            var reply = Execute(root, session);
            after = reply.After;
            return Serialize(reply, id);
        }
    }

    private QmpReply Execute(JsonElement root, QmpSession session)
    {
        if (!root.TryGetProperty("execute", out var execute))
            return QmpReply.Fail("QMP input lacks member 'execute'");
        if (execute.ValueKind != JsonValueKind.String)
            return QmpReply.Fail("QMP input member 'execute' must be a string");
        var arguments = default(JsonElement);
        if (root.TryGetProperty("arguments", out var args))
        {
            if (args.ValueKind != JsonValueKind.Object)
                return QmpReply.Fail("QMP input member 'arguments' must be an object");
            arguments = args;
        }
        string name = execute.GetString()!;
        if (!_commands.TryGetValue(name, out var command))
            return QmpReply.Fail($"The command {name} has not been found", CommandNotFound);
        if (!session.Negotiated && name != "qmp_capabilities")
            return QmpReply.Fail("Expecting capabilities negotiation with 'qmp_capabilities'", CommandNotFound);
        return command(arguments, session);
    }

    /// <summary>The events this server can send.</summary>
    private static readonly QmpNamed[] Events =
        [new("SHUTDOWN"), new("RESET"), new("POWERDOWN"), new("STOP"), new("RESUME"), new("BALLOON_CHANGED")];

    private QmpCpuInfo[] Cpus() =>
    [
        .. _machine.CpuThreads.Select(c => new QmpCpuInfo(c.Index, c.Index == 0, false,
            $"/machine/unattached/device[{c.Index}]", c.ThreadId, new QmpCpuProps(c.Index, 0, 0))),
    ];

    private QmpCommandInfo[] CommandList() => [.. _commands.Keys.Select(n => new QmpCommandInfo(n))];

    private QmpReply Balloon(JsonElement arguments)
    {
        if (_machine.BalloonActual is null) return QmpReply.Fail(NoBalloon);
        BalloonArguments? parsed;
        try
        {
            parsed = arguments.ValueKind == JsonValueKind.Object
                ? arguments.Deserialize(QmpJsonContext.Default.BalloonArguments)
                : null;
        }
        catch (JsonException e)
        {
            return QmpReply.Fail($"Invalid arguments for 'balloon': {e.Message}");
        }
        if (parsed is null) return QmpReply.Fail("Parameter 'value' is missing");
        return _machine.TrySetBalloon(parsed.Value, out string? error)
            ? QmpReply.Ok(Empty, QmpJsonContext.Default.QmpEmpty)
            : QmpReply.Fail(error ?? "balloon failed");
    }

    private QmpReply QueryBalloon() => _machine.BalloonActual is { } actual
        ? QmpReply.Ok(new BalloonInfo(actual), QmpJsonContext.Default.BalloonInfo)
        : QmpReply.Fail(NoBalloon);

    private const string NoBalloon = "No balloon device has been activated";

    /// <summary>An error reply without id, for faults outside any one request.</summary>
    public static byte[] ErrorLine(string desc) => Serialize(QmpReply.Fail(desc), default);

    /// <summary>{"return":...,"id":...} or {"error":{...},"id":...}, newline-terminated.</summary>
    private static byte[] Serialize(QmpReply reply, JsonElement id)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            if (reply.Error is { } error)
            {
                w.WritePropertyName("error");
                JsonSerializer.Serialize(w, error, QmpJsonContext.Default.QmpErrorBody);
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
        }
        return [.. buffer.WrittenSpan, (byte)'\n'];
    }

    /// <summary>{"event":NAME,"data":...,"timestamp":{...}}, newline-terminated; data is omitted when null.</summary>
    public static byte[] Event<T>(string name, T? data, JsonTypeInfo<T> info, DateTimeOffset now)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("event", name);
            if (data is not null)
            {
                w.WritePropertyName("data");
                JsonSerializer.Serialize(w, data, info);
            }
            long micros = (now - DateTimeOffset.UnixEpoch).Ticks / 10;
            w.WriteStartObject("timestamp");
            w.WriteNumber("seconds", micros / 1_000_000);
            w.WriteNumber("microseconds", micros % 1_000_000);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return [.. buffer.WrittenSpan, (byte)'\n'];
    }

    public static byte[] Greeting() => [.. JsonSerializer.SerializeToUtf8Bytes(
        new QmpGreeting(new QmpGreetingBody(QmpServer.Version, [])), QmpJsonContext.Default.QmpGreeting), (byte)'\n'];
}
