using System.Text;

namespace StratoVirt.Tests.Unit;

/// <summary>Input no client should send: bytes that are not UTF-8, escapes that decode to no string, and
/// commands that fail inside the machine. Each gets an error reply, and the same connection is served on.</summary>
public sealed partial class QmpServerTests
{
    private const string Status = """{"return":{"running":true,"singlestep":false,"status":"running"},"id":"next"}""";
    private const string NextStatus = """{"execute":"query-status","id":"next"}""";
    private const string InvalidUtf8Reply = """{"error":{"class":"GenericError","desc":"JSON parse error, invalid UTF-8 sequence in string"}}""";

    private static byte[] Bytes(string before, byte[] bad, string after) =>
        [.. Encoding.ASCII.GetBytes(before), .. bad, .. Encoding.ASCII.GetBytes(after)];

    public static TheoryData<byte[]> InvalidUtf8Requests => new()
    {
        Bytes("{\"execute\":\"", [0xFF, 0xFE, 0xC0, 0xAF], "\"}\n"),                               // the command name
        Bytes("{\"execute\":\"query-status\",\"", [0xC3], "\":1}\n"),                             // a key
        Bytes("{\"execute\":\"balloon\",\"arguments\":{\"value\":\"", [0xED, 0xA0, 0x80], "\"}}\n"), // a value (a surrogate)
        Bytes("{\"execute\":\"query-status\",\"id\":\"", [0xE2, 0x82], "\"}\n"),                  // the id, truncated sequence
        Bytes("{\"execute\":\"device_add\",\"arguments\":{\"", [0xF8, 0x88, 0x80, 0x80, 0x80], "\":\"x\"}}\n"),
    };

    [Theory]
    [MemberData(nameof(InvalidUtf8Requests))]
    public void InvalidUtf8GetsQemusErrorAndTheNextRequestIsAnswered(byte[] request)
    {
        using var c = Connect();
        c.Send(request);
        Assert.Equal(InvalidUtf8Reply, c.ReadLine());
        Assert.Equal(Status, c.Execute(NextStatus));
    }

    [Fact]
    public void InvalidUtf8SplitAcrossReadsIsCaughtToo()
    {
        using var c = Connect();
        // The two bytes of one (overlong) sequence arrive in separate reads.
        c.Send(Bytes("{\"execute\":\"query-", [0xC0], ""));
        Thread.Sleep(50);
        c.Send(Bytes("", [0xAF], "status\"}\n"));
        Assert.Equal(InvalidUtf8Reply, c.ReadLine());
        Assert.Equal(Status, c.Execute(NextStatus));
    }

    [Theory]
    [InlineData("""{"execute":"\ud800"}""")]
    [InlineData("""{"execute":"query-status","\udc00":1}""")]
    [InlineData("""{"execute":"balloon","arguments":{"value\ud800":1}}""")]
    [InlineData("""{"execute":"blockdev-add","arguments":{"node-name":"\udfff","file":{"filename":"/x"}}}""")]
    [InlineData("""{"execute":"query-status","id":["\ud800\u0041"]}""")]
    public void ALoneSurrogateEscapeIsAnErrorNotACrash(string request)
    {
        using var c = Connect();
        Assert.Equal("""{"error":{"class":"GenericError","desc":"JSON parse error, invalid escape sequence in string"}}""",
            c.Execute(request));
        Assert.Equal(Status, c.Execute(NextStatus));
    }

    [Fact]
    public void ACommandThatFailsInsideTheMachineFailsAlone()
    {
        _machine.BalloonThrows = true;
        using var c = Connect();
        Assert.Equal("""{"error":{"class":"GenericError","desc":"balloon failed: the balloon broke"},"id":1}""",
            c.Execute("""{"execute":"balloon","arguments":{"value":1073741824},"id":1}"""));
        Assert.Equal(Status, c.Execute(NextStatus));
    }

    /// <summary>stop pauses the machine after its reply is queued; a failure there is logged, and the client is
    /// served on.</summary>
    [Fact]
    public void AFailureAfterTheReplyKeepsTheConnection()
    {
        _machine.StopThrows = true;
        using var c = Connect();
        Assert.Equal("""{"return":{},"id":1}""", c.Execute("""{"execute":"stop","id":1}"""));
        Assert.Equal(Status, c.Execute(NextStatus));
        Assert.True(_server!.HasClient);
    }
}
