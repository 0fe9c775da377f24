using System.Text.Json;
using System.Text.Json.Serialization;

namespace StratoVirt.Qmp;

// Arguments of the hotplug commands with upstream's names. Unknown members are refused; members upstream keeps
// only for QEMU compatibility are typed JsonElement so that any value is accepted, and ignored.

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class BlockdevAddArguments
{
    [JsonRequired, JsonPropertyName("node-name")] public string NodeName { get; set; } = "";
    [JsonRequired] public BlockdevFileArguments File { get; set; } = null!;
    public string? Driver { get; set; }
    [JsonPropertyName("read-only")] public bool? ReadOnly { get; set; }
    public BlockdevCacheArguments? Cache { get; set; }
    public string? Media { get; set; }
    [JsonPropertyName("detect-zeroes")] public JsonElement? DetectZeroes { get; set; }
    public JsonElement? Discard { get; set; }
    public JsonElement? Id { get; set; }
    public JsonElement? Options { get; set; }
    public JsonElement? Backing { get; set; }
    [JsonPropertyName("throttling.iops-total")] public JsonElement? IopsTotal { get; set; }
    [JsonPropertyName("l2-cache-size")] public JsonElement? L2CacheSize { get; set; }
    [JsonPropertyName("refcount-cache-size")] public JsonElement? RefcountCacheSize { get; set; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class BlockdevFileArguments
{
    [JsonRequired] public string Driver { get; set; } = "";
    [JsonRequired] public string Filename { get; set; } = "";
    public string? Aio { get; set; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class BlockdevCacheArguments
{
    public bool? Direct { get; set; }
    [JsonPropertyName("no-flush")] public bool? NoFlush { get; set; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class NodeNameArguments
{
    [JsonRequired, JsonPropertyName("node-name")] public string NodeName { get; set; } = "";
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class IdArguments
{
    [JsonRequired] public string Id { get; set; } = "";
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class NetdevAddArguments
{
    [JsonRequired] public string Id { get; set; } = "";
    public string? Ifname { get; set; }
    public string? Fd { get; set; }
    public string? Fds { get; set; }
    public string? Type { get; set; }
    public bool? Vhost { get; set; }
    public string? Vhostfd { get; set; }
    public string? Vhostfds { get; set; }
    public int? Queues { get; set; }
    public string? Script { get; set; }
    public string? Downscript { get; set; }
    public JsonElement? Dnssearch { get; set; }
    public JsonElement? Chardev { get; set; }
    public JsonElement? Macnat { get; set; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class DeviceAddArguments
{
    [JsonRequired] public string Id { get; set; } = "";
    [JsonRequired] public string Driver { get; set; } = "";
    public string? Addr { get; set; }
    public int? Lun { get; set; }
    public string? Drive { get; set; }
    public string? Netdev { get; set; }
    public string? Chardev { get; set; }
    public string? Mac { get; set; }
    public string? Serial { get; set; }
    public string? Iothread { get; set; }
    public JsonElement? Romfile { get; set; }
    [JsonPropertyName("share-rw")] public JsonElement? ShareRw { get; set; }
    public string? Bus { get; set; }
    [JsonPropertyName("disable-modern")] public JsonElement? DisableModern { get; set; }
    public JsonElement? Mq { get; set; }
    public JsonElement? Vectors { get; set; }
    public JsonElement? Multifunction { get; set; }
    public JsonElement? Host { get; set; }
    [JsonPropertyName("num-queues")] public ushort? NumQueues { get; set; }
    [JsonPropertyName("boot_index")] public JsonElement? BootIndex { get; set; }
    public JsonElement? Sysfsdev { get; set; }
    [JsonPropertyName("queue-size")] public ushort? QueueSize { get; set; }
    public JsonElement? Port { get; set; }
    public JsonElement? Backend { get; set; }
    public JsonElement? Path { get; set; }
    public JsonElement? Cameradev { get; set; }
    public JsonElement? Hostbus { get; set; }
    public JsonElement? Hostaddr { get; set; }
    public JsonElement? Hostport { get; set; }
    public JsonElement? Vendorid { get; set; }
    public JsonElement? Productid { get; set; }
    public JsonElement? Isobufs { get; set; }
    public JsonElement? Isobsize { get; set; }
    [JsonPropertyName("cpu-id")] public JsonElement? CpuId { get; set; }
}

/// <summary>chardev-add: <c>{"id","backend":{"type","data":{"addr":{"type","data":{"path"}},"server"}}}</c>, every
/// member required (as upstream's schema).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class ChardevAddArguments
{
    [JsonRequired] public string Id { get; set; } = "";
    [JsonRequired] public ChardevBackendArguments Backend { get; set; } = null!;
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class ChardevBackendArguments
{
    [JsonRequired] public string Type { get; set; } = "";
    [JsonRequired] public ChardevSocketArguments Data { get; set; } = null!;
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class ChardevSocketArguments
{
    [JsonRequired] public ChardevAddressArguments Addr { get; set; } = null!;
    [JsonRequired] public bool Server { get; set; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class ChardevAddressArguments
{
    [JsonRequired] public string Type { get; set; } = "";
    [JsonRequired] public ChardevPathArguments Data { get; set; } = null!;
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class ChardevPathArguments
{
    [JsonRequired] public string Path { get; set; } = "";
}

/// <summary>DEVICE_DELETED's data: upstream StratoVirt reports the id as the path too.</summary>
public sealed record DeviceDeletedEventData(string Device, string Path);

/// <summary>Source-generated JSON for the hotplug commands' arguments and events.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(BlockdevAddArguments))]
[JsonSerializable(typeof(NodeNameArguments))]
[JsonSerializable(typeof(IdArguments))]
[JsonSerializable(typeof(NetdevAddArguments))]
[JsonSerializable(typeof(DeviceAddArguments))]
[JsonSerializable(typeof(ChardevAddArguments))]
[JsonSerializable(typeof(DeviceDeletedEventData))]
public sealed partial class QmpHotplugJsonContext : JsonSerializerContext;
