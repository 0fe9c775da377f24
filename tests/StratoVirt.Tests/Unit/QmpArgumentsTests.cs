using System.Text.Json;
using StratoVirt.Qmp;

namespace StratoVirt.Tests.Unit;

/// <summary>QEMU's argument errors from a command's argument type, checked without a socket.</summary>
[Trait("Level", "Unit")]
public sealed class QmpArgumentsTests
{
    /// <summary>Shaped like the hotplug commands' arguments: a nested object, optional members.</summary>
    private static readonly QmpType Sample = QmpType.Object(
        QmpMember.Req("node-name", QmpType.String),
        QmpMember.Req("file", QmpType.Object(QmpMember.Req("filename", QmpType.String), QmpMember.Opt("aio", QmpType.String))),
        QmpMember.Opt("read-only", QmpType.Boolean),
        QmpMember.Opt("queues", QmpType.UInt16),
        QmpMember.Opt("lun", QmpType.Int32),
        QmpMember.Opt("size", QmpType.UInt64),
        QmpMember.Opt("extra", QmpType.Any));

    private static string? Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        bool ok = QmpArguments.TryParse(doc.RootElement, Sample, out _, out string? error);
        Assert.Equal(ok, error is null);
        return error;
    }

    [Fact]
    public void ValidArgumentsAreReadByName()
    {
        using var doc = JsonDocument.Parse(
            """{"node-name":"d0","file":{"filename":"/img","aio":"native"},"read-only":null,"queues":2,"lun":-1,"size":18446744073709551615,"extra":[{}]}""");
        Assert.True(QmpArguments.TryParse(doc.RootElement, Sample, out var value, out string? error), error);
        Assert.Equal("d0", value.String("node-name"));
        Assert.Equal("/img", value.Object("file").String("filename"));
        Assert.Equal("native", value.Object("file").OptionalString("aio"));
        Assert.Null(value.OptionalBoolean("read-only"));
        Assert.Equal((ushort)2, value.OptionalUInt16("queues"));
        Assert.Equal(-1, value.OptionalInt32("lun"));
        Assert.Equal(ulong.MaxValue, value.UInt64("size"));
        Assert.Null(value.OptionalObject("cache"));
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
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"queues":-1}""", "Parameter 'queues' expects uint16")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"queues":1.5}""", "Invalid parameter type for 'queues', expected: integer")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"lun":-2147483649}""", "Parameter 'lun' expects int32")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"lun":2147483648}""", "Parameter 'lun' expects int32")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"size":-1}""", "Parameter 'size' expects uint64")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img"},"size":18446744073709551616}""", "Invalid parameter type for 'size', expected: integer")]
    [InlineData("""{"node-name":null,"file":{"filename":"/img"}}""", "Invalid parameter type for 'node-name', expected: string")]
    [InlineData("""{"node-name":"d0","file":null}""", "Invalid parameter type for 'file', expected: object")]
    [InlineData("""{"node-name":"d0","file":{"filename":"/img","aio":null}}""", "Invalid parameter type for 'file.aio', expected: string")]
    public void BadArgumentsGetQemusMessages(string json, string message) => Assert.Equal(message, Parse(json));

    [Fact]
    public void MissingArgumentsCountAsAnEmptyObject()
    {
        Assert.False(QmpArguments.TryParse(default, Sample, out _, out string? error));
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
