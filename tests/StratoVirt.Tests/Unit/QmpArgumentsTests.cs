using System.Text.Json;
using System.Text.Json.Serialization;
using StratoVirt.Qmp;

namespace StratoVirt.Tests.Unit;

/// <summary>Argument classes shaped like the hotplug ones: nested objects, optional members, lists.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class SampleFile
{
    [JsonRequired]
    [JsonPropertyName("filename")]
    public string FileName { get; set; } = "";

    [JsonPropertyName("aio")]
    public string? Aio { get; set; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class SampleArguments
{
    [JsonRequired]
    [JsonPropertyName("node-name")]
    public string NodeName { get; set; } = "";

    [JsonRequired]
    [JsonPropertyName("file")]
    public SampleFile File { get; set; } = new();

    [JsonPropertyName("read-only")]
    public bool? ReadOnly { get; set; }

    [JsonPropertyName("queues")]
    public ushort Queues { get; set; }

    [JsonPropertyName("fds")]
    public List<int>? Fds { get; set; }
}

[JsonSerializable(typeof(SampleArguments))]
public sealed partial class SampleJsonContext : JsonSerializerContext;

/// <summary>QEMU's argument errors from source-generated metadata, checked without a socket.</summary>
[Trait("Level", "Unit")]
public sealed class QmpArgumentsTests
{
    private static (SampleArguments? Value, string? Error) Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        bool ok = QmpArguments.TryParse(doc.RootElement, SampleJsonContext.Default.SampleArguments, out var value, out string? error);
        Assert.Equal(ok, error is null);
        return (value, error);
    }

    [Fact]
    public void ValidArgumentsDeserialise()
    {
        var (value, error) = Parse("""{"node-name":"d0","file":{"filename":"/img","aio":"native"},"read-only":null,"queues":2,"fds":[3,4]}""");
        Assert.Null(error);
        Assert.Equal("d0", value!.NodeName);
        Assert.Equal("/img", value.File.FileName);
        Assert.Equal("native", value.File.Aio);
        Assert.Null(value.ReadOnly);
        Assert.Equal((ushort)2, value.Queues);
        Assert.Equal([3, 4], value.Fds);
    }

    [Theory]
    [InlineData("""{"file":{"filename":"/img"}}""", "Parameter 'node-name' is missing")]
    [InlineData("""{"node-name":"d0"}""", "Parameter 'file' is missing")]
    [InlineData("""{"node-name":"d0","file":{}}""", "Parameter 'file.filename' is missing")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"cache":{}}""", "Parameter 'cache' is unexpected")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img","driver":"file"}}""", "Parameter 'file.driver' is unexpected")]
    [InlineData("""{"node-name":7,"file":{"filename":"/img"}}""", "Invalid parameter type for 'node-name', expected: string")]
    [InlineData("""{"node-name":"d0","file":"/img"}""", "Invalid parameter type for 'file', expected: object")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"read-only":"yes"}""", "Invalid parameter type for 'read-only', expected: boolean")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"queues":70000}""", "Parameter 'queues' expects uint16")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"queues":true}""", "Invalid parameter type for 'queues', expected: integer")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"fds":3}""", "Invalid parameter type for 'fds', expected: array")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"fds":[3,"x"]}""", "Invalid parameter type for 'fds[1]', expected: integer")]
    public void BadArgumentsGetQemusMessages(string json, string message) => Assert.Equal(message, Parse(json).Error);

    [Fact]
    public void MissingArgumentsCountAsAnEmptyObject()
    {
        Assert.False(QmpArguments.TryParse(default, SampleJsonContext.Default.SampleArguments, out _, out string? error));
        Assert.Equal("Parameter 'node-name' is missing", error);
    }

    [Fact]
    public void CheckNoneNamesTheFirstArgument()
    {
        using var doc = JsonDocument.Parse("""{"a":1,"b":2}""");
        Assert.Equal("Parameter 'a' is unexpected", QmpArguments.CheckNone(doc.RootElement));
        using var empty = JsonDocument.Parse("{}");
        Assert.Null(QmpArguments.CheckNone(empty.RootElement));
        Assert.Null(QmpArguments.CheckNone(default));
    }
}
