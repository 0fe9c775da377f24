using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Tests.Virtio;

/// <summary>The vhost-user frame codec against frames written out by hand, byte by byte.</summary>
[Trait("Level", "Unit")]
public sealed class VhostUserCodecTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    [Fact]
    public void RequestHeadersCarryVersionOneAndTheNeedReplyFlag()
    {
        var frame = new byte[VhostUserCodec.HeaderSize + 8];
        int length = VhostUserCodec.WriteHeader(frame, VhostUserRequest.SetFeatures, VhostUserCodec.WriteU64(frame.AsSpan(12), 0x1_4000_0000), needReply: true);
        Assert.Equal(20, length);
        Assert.Equal(Hex("02000000 09000000 08000000 00000040 01000000"), frame);

        VhostUserCodec.WriteHeader(frame, VhostUserRequest.GetFeatures, 0);
        Assert.Equal(Hex("01000000 01000000 00000000"), frame[..12]);
    }

    [Fact]
    public void VringStateAndAddressLayouts()
    {
        var payload = new byte[VhostUserCodec.VringAddressSize];
        Assert.Equal(8, VhostUserCodec.WriteVringState(payload, 1, 256));
        Assert.Equal(Hex("01000000 00010000"), payload[..8]);

        Assert.Equal(40, VhostUserCodec.WriteVringAddress(payload, 2, 0x7f00_0000_1000, 0x7f00_0000_3000, 0x7f00_0000_2000));
        Assert.Equal(Hex("02000000 00000000 0010000000 7f0000 0030000000 7f0000 0020000000 7f0000 0000000000000000"), payload);
    }

    [Fact]
    public void MemoryTableListsEachRegionWithItsMmapOffset()
    {
        var payload = new byte[VhostUserCodec.MaxPayload];
        int size = VhostUserCodec.WriteMemoryTable(payload,
            [new(0, 0x8000_0000, 0x7f12_0000_0000, 7, 0), new(0x1_0000_0000, 0x4000_0000, 0x7f12_8000_0000, 7, 0x8000_0000)]);
        Assert.Equal(8 + 2 * 32, size);
        Assert.Equal(Hex(
            "02000000 00000000" +
            "0000000000000000 0000008000000000 00000000127f0000 0000000000000000" +
            "0000000001000000 0000004000000000 00000080127f0000 0000008000000000"), payload[..size]);
    }

    [Fact]
    public void MemoryTableRefusesNoneOrMoreThanEightRegions()
    {
        var payload = new byte[VhostUserCodec.MaxPayload];
        Assert.Throws<ArgumentException>(() => VhostUserCodec.WriteMemoryTable(payload, []));
        var nine = Enumerable.Range(0, 9).Select(i => new VhostUserMemoryRegion((ulong)i << 30, 1 << 30, 0, 3, 0)).ToArray();
        Assert.Throws<ArgumentException>(() => VhostUserCodec.WriteMemoryTable(payload, nine));
    }

    [Fact]
    public void ConfigRequestAsksForOffsetAndSize()
    {
        var payload = new byte[VhostUserCodec.MaxPayload];
        Assert.Equal(12 + 60, VhostUserCodec.WriteConfigRequest(payload, 0, 60));
        Assert.Equal(Hex("00000000 3c000000 00000000"), payload[..12]);
        Assert.All(payload[12..72], b => Assert.Equal(0, b));
        Assert.Throws<ArgumentOutOfRangeException>(() => VhostUserCodec.WriteConfigRequest(payload, 0, 257));
    }

    [Fact]
    public void AWellFormedReplyIsAccepted()
    {
        Assert.Equal(8, VhostUserCodec.ReadReplyHeader(Hex("01000000 05000000 08000000"), VhostUserRequest.GetFeatures));
        Assert.Equal(0x1_4000_0000UL, VhostUserCodec.ReadU64(Hex("00000040 01000000"), VhostUserRequest.GetFeatures));
        Assert.Equal(17u, VhostUserCodec.ReadVringState(Hex("01000000 11000000"), 1, VhostUserRequest.GetVringBase));
        var config = VhostUserCodec.ReadConfig(Hex("00000000 04000000 00000000 00100000"), 0, 4).ToArray();
        Assert.Equal(Hex("00100000"), config);
    }

    [Theory]
    [InlineData("01000000 01000000 08000000", "without the reply flag")] // not a reply
    [InlineData("01000000 06000000 08000000", "protocol version 2")]
    [InlineData("01000000 04000000 08000000", "protocol version 0")]
    [InlineData("0f000000 05000000 08000000", "reply to request 15")] // answers another request
    [InlineData("01000000 05000000 00100000", "claims 4096 payload bytes")] // oversized
    [InlineData("01000000 05000000 ffffffff", "claims 4294967295 payload bytes")]
    public void AMalformedReplyHeaderIsNamed(string header, string expected)
    {
        var e = Assert.Throws<VhostUserException>(() => VhostUserCodec.ReadReplyHeader(Hex(header), VhostUserRequest.GetFeatures));
        Assert.Contains(expected, e.Message);
        Assert.Contains("GET_FEATURES", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("00000040")]
    [InlineData("00000040 01000000 00")]
    public void AU64ReplyOfTheWrongSizeIsRefused(string payload)
    {
        var e = Assert.Throws<VhostUserException>(() => VhostUserCodec.ReadU64(Hex(payload), VhostUserRequest.GetProtocolFeatures));
        Assert.Contains($"has {payload.Replace(" ", "").Length / 2} payload bytes; it must have 8", e.Message);
    }

    [Fact]
    public void AVringStateAboutAnotherQueueIsRefused()
    {
        var e = Assert.Throws<VhostUserException>(() => VhostUserCodec.ReadVringState(Hex("02000000 11000000"), 1, VhostUserRequest.GetVringBase));
        Assert.Contains("for queue 1 about queue 2", e.Message);
        Assert.Throws<VhostUserException>(() => VhostUserCodec.ReadVringState(Hex("01000000"), 1, VhostUserRequest.GetVringBase));
    }

    [Theory]
    [InlineData("", "refused GET_CONFIG")]
    [InlineData("00000000 04000000 00000000 0010", "has 14 payload bytes; it must have 16")]
    [InlineData("04000000 04000000 00000000 00100000", "with 4 bytes at 4")]
    [InlineData("00000000 02000000 00000000 00100000", "with 2 bytes at 0")]
    public void AMismatchedConfigReplyIsRefused(string payload, string expected)
    {
        var e = Assert.Throws<VhostUserException>(() => VhostUserCodec.ReadConfig(Hex(payload), 0, 4));
        Assert.Contains(expected, e.Message);
    }
}
