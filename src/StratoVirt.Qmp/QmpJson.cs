using System.Text.Json.Serialization;

namespace StratoVirt.Qmp;

/// <summary>The QEMU version QMP clients are shown (Kata's govmm wants major 5 or later).</summary>
public sealed record QemuVersion(int Micro, int Minor, int Major);

public sealed record QmpVersion(QemuVersion Qemu, string Package);

public sealed record QmpGreetingBody(QmpVersion Version, string[] Capabilities);

public sealed record QmpGreeting([property: JsonPropertyName("QMP")] QmpGreetingBody Qmp);

public sealed record QmpStatus(bool Running, bool Singlestep, string Status);

/// <summary>The <c>query-balloon</c> return and the BALLOON_CHANGED event data.</summary>
public sealed record BalloonInfo(ulong Actual);

/// <summary>BLOCK_IO_ERROR's data, in QEMU's shape (upstream StratoVirt has no such event): the device, "read" or
/// "write", the action taken ("report": the guest got the error, the VM runs on), whether the disk was full, and the
/// host's error text.</summary>
public sealed record BlockIoErrorEventData(string Device, string Operation, string Action, bool Nospace, string Reason);

/// <summary>DEVICE_BACKEND_DISCONNECTED's data: the device whose vhost-user backend closed its socket (the device now
/// needs a reset), the chardev it named and the socket's path.</summary>
public sealed record BackendDisconnectedEventData(string Device, string Chardev, string Socket);

public sealed record QmpCommandInfo(string Name);

/// <summary>An empty object: the return of commands that return nothing.</summary>
public sealed record QmpEmpty;

public sealed record QmpCpuProps([property: JsonPropertyName("core-id")] int CoreId,
    [property: JsonPropertyName("socket-id")] int SocketId, [property: JsonPropertyName("thread-id")] int ThreadId);

/// <summary>One <c>query-cpus</c> entry, with upstream's field names.</summary>
public sealed record QmpCpuInfo([property: JsonPropertyName("CPU")] int Cpu, bool Current, bool Halted,
    [property: JsonPropertyName("qom_path")] string QomPath, [property: JsonPropertyName("thread_id")] int ThreadId,
    QmpCpuProps Props);

/// <summary>One <c>query-hotpluggable-cpus</c> entry, in QEMU's shape.</summary>
public sealed record QmpHotpluggableCpu(string Type, [property: JsonPropertyName("vcpus-count")] int VcpusCount,
    QmpCpuProps Props, [property: JsonPropertyName("qom-path")] string QomPath);

/// <summary>A property name and type, for <c>device-list-properties</c>.</summary>
public sealed record QmpProperty(string Name, string Type);

public sealed record QmpTarget(string Arch);

public sealed record QmpKvm(bool Enabled, bool Present);

public sealed record QmpMachine(string Name, [property: JsonPropertyName("cpu-max")] int CpuMax,
    [property: JsonPropertyName("hotpluggable-cpus")] bool HotpluggableCpus, [property: JsonPropertyName("is-default")] bool IsDefault);

/// <summary>A name, for query-commands and query-events.</summary>
public sealed record QmpNamed(string Name);

public sealed record ShutdownEventData(bool Guest, string Reason);

public sealed record QmpErrorBody(string Class, string Desc);

/// <summary>query-migrate's return: the status, and QEMU's error-desc for a failure.</summary>
public sealed record QmpMigrationInfo(string Status,
    [property: JsonPropertyName("error-desc"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ErrorDesc);

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class MigrateArguments
{
    [JsonRequired]
    public string Uri { get; set; } = "";
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class BalloonArguments
{
    [JsonRequired]
    public ulong Value { get; set; }
}

/// <summary>getfd and closefd.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class FdNameArguments
{
    [JsonRequired]
    [JsonPropertyName("fdname")]
    public string FdName { get; set; } = "";
}

/// <summary>Source-generated (reflection-free, NativeAOT-safe) JSON for every QMP payload.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(QmpGreeting))]
[JsonSerializable(typeof(QmpVersion))]
[JsonSerializable(typeof(QmpStatus))]
[JsonSerializable(typeof(BalloonInfo))]
[JsonSerializable(typeof(BlockIoErrorEventData))]
[JsonSerializable(typeof(BackendDisconnectedEventData))]
[JsonSerializable(typeof(QmpCommandInfo[]))]
[JsonSerializable(typeof(QmpCpuInfo[]))]
[JsonSerializable(typeof(QmpTarget))]
[JsonSerializable(typeof(QmpKvm))]
[JsonSerializable(typeof(QmpMachine[]))]
[JsonSerializable(typeof(QmpNamed[]))]
[JsonSerializable(typeof(QmpEmpty))]
[JsonSerializable(typeof(ShutdownEventData))]
[JsonSerializable(typeof(QmpErrorBody))]
[JsonSerializable(typeof(BalloonArguments))]
[JsonSerializable(typeof(FdNameArguments))]
[JsonSerializable(typeof(QmpMigrationInfo))]
[JsonSerializable(typeof(MigrateArguments))]
[JsonSerializable(typeof(QmpHotpluggableCpu[]))]
[JsonSerializable(typeof(QmpProperty[]))]
[JsonSerializable(typeof(QmpPciInfo[]))]
public sealed partial class QmpJsonContext : JsonSerializerContext;
