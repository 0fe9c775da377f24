using System.Text.Json.Serialization;

namespace StratoVirt.Machine.Qmp;

/// <summary>The QEMU version QMP clients are shown (Kata's govmm wants major 5 or later).</summary>
public sealed record QemuVersion(int Micro, int Minor, int Major);

public sealed record QmpVersion(QemuVersion Qemu, string Package);

public sealed record QmpGreetingBody(QmpVersion Version, string[] Capabilities);

public sealed record QmpGreeting([property: JsonPropertyName("QMP")] QmpGreetingBody Qmp);

public sealed record QmpStatus(bool Running, bool Singlestep, string Status);

/// <summary>The <c>query-balloon</c> return and the BALLOON_CHANGED event data.</summary>
public sealed record BalloonInfo(ulong Actual);

public sealed record QmpCommandInfo(string Name);

/// <summary>An empty object: the return of commands that return nothing.</summary>
public sealed record QmpEmpty;

public sealed record ShutdownEventData(bool Guest, string Reason);

public sealed record QmpErrorBody(string Class, string Desc);

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class BalloonArguments
{
    [JsonRequired]
    public ulong Value { get; set; }
}

/// <summary>Source-generated (reflection-free, NativeAOT-safe) JSON for every QMP payload.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(QmpGreeting))]
[JsonSerializable(typeof(QmpVersion))]
[JsonSerializable(typeof(QmpStatus))]
[JsonSerializable(typeof(BalloonInfo))]
[JsonSerializable(typeof(QmpCommandInfo[]))]
[JsonSerializable(typeof(QmpEmpty))]
[JsonSerializable(typeof(ShutdownEventData))]
[JsonSerializable(typeof(QmpErrorBody))]
[JsonSerializable(typeof(BalloonArguments))]
public sealed partial class QmpJsonContext : JsonSerializerContext;
