using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Tests.Virtio;

/// <summary>The vhost-user frontend over a real unix socket against a fake backend on its own thread.</summary>
[Trait("Level", "Unit")]
public sealed class VhostUserFrontendTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeVhostUserBackend _backend;

    public VhostUserFrontendTests() => _backend = new FakeVhostUserBackend(Path.Combine(_dir.Path, "backend.sock"));

    public void Dispose()
    {
        _backend.Dispose();
        _dir.Dispose();
    }

    private VhostUserFrontend Connect(int timeoutMs = 2000)
    {
        var socket = UnixSocket.Connect(System.Text.Encoding.UTF8.GetBytes(_backend.Path), out int errno)
            ?? throw new InvalidOperationException($"connect: errno {errno}");
        return new VhostUserFrontend(socket, _backend.Path, timeoutMs);
    }

    [Fact]
    public void ASocketNobodyListensOnIsNamed()
    {
        string path = Path.Combine(_dir.Path, "nobody.sock");
        var e = Assert.Throws<VhostUserException>(() => VhostUserFrontend.Connect(path));
        Assert.Equal($"vhost-user socket {path}: nobody listens on it (start the backend first)", e.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void NegotiatesFeaturesProtocolFeaturesAndOwner()
    {
        using var frontend = VhostUserFrontend.Connect(_backend.Path);
        ulong features = frontend.GetFeatures();
        Assert.Equal(_backend.Features, features);
        Assert.Equal(VhostUserProtocolFeature.Supported, frontend.GetProtocolFeatures());
        frontend.SetProtocolFeatures(VhostUserProtocolFeature.ReplyAck | VhostUserProtocolFeature.MultiQueue);
        Assert.Equal(2UL, frontend.GetQueueNum());
        frontend.SetOwner();
        frontend.SetFeatures(VirtioFeature.Version1 | VhostUserFeature.ProtocolFeatures);

        var got = _backend.Received;
        Assert.Equal([VhostUserRequest.GetFeatures, VhostUserRequest.GetProtocolFeatures, VhostUserRequest.SetProtocolFeatures,
            VhostUserRequest.GetQueueNum, VhostUserRequest.SetOwner, VhostUserRequest.SetFeatures], got.Select(r => r.Request));
        Assert.False(got[2].NeedReply); // REPLY_ACK applies only after it is set
        Assert.True(got[4].NeedReply);
        Assert.Equal(VirtioFeature.Version1 | VhostUserFeature.ProtocolFeatures, got[5].U64);
    }

    [Fact]
    public void WithoutReplyAckCommandsAreNotAcknowledged()
    {
        using var frontend = Connect();
        frontend.SetOwner();
        frontend.SetVringNum(0, 128);
        Assert.Equal(2UL, frontend.GetQueueNum()); // the reply that follows is the queue count, not an ack
        Assert.All(_backend.Received, r => Assert.False(r.NeedReply));
    }

    [Fact]
    public void AnAckWithAnErrorStatusIsARefusal()
    {
        _backend.AckStatus = r => r == VhostUserRequest.SetMemTable ? 1UL : 0;
        using var frontend = Connect();
        frontend.SetProtocolFeatures(VhostUserProtocolFeature.ReplyAck);
        using var memfd = new EventFd(); // any fd: the fake backend only counts them
        var e = Assert.Throws<VhostUserException>(() => frontend.SetMemTable([new(0, 1 << 20, 0x1000_0000, memfd.Fd, 0)]));
        Assert.Equal($"vhost-user socket {_backend.Path}: the backend refused SET_MEM_TABLE (status 1)", e.Message);
    }

    [Fact]
    public void MemoryTableAndVringFdsTravelWithTheirMessages()
    {
        using var frontend = Connect();
        frontend.SetProtocolFeatures(VhostUserProtocolFeature.ReplyAck);
        using var a = new EventFd();
        using var b = new EventFd();
        frontend.SetMemTable([new(0, 1 << 20, 0x1000_0000, a.Fd, 0), new(1 << 20, 1 << 20, 0x2000_0000, b.Fd, 1 << 20)]);
        frontend.SetVringNum(1, 256);
        frontend.SetVringBase(1, 0);
        frontend.SetVringAddress(1, 0x1000_1000, 0x1000_3000, 0x1000_2000);
        frontend.SetVringCall(1, a.Fd);
        frontend.SetVringErr(1, b.Fd);
        frontend.SetVringKick(1, b.Fd);
        frontend.SetVringEnable(1, true);
        Assert.Equal(0u, frontend.GetVringBase(1));

        var got = _backend.Received;
        var table = got.Single(r => r.Request == VhostUserRequest.SetMemTable);
        Assert.Equal(2, table.Fds.Length);
        Assert.Equal(8 + 64, table.Payload.Length);
        var kick = got.Single(r => r.Request == VhostUserRequest.SetVringKick);
        Assert.Single(kick.Fds);
        Assert.Equal(1UL, kick.U64);
        // The backend's copy of the call fd is the same eventfd: what it signals, the frontend reads.
        var call = got.Single(r => r.Request == VhostUserRequest.SetVringCall);
        ulong one = 1;
        unsafe { Libc.Write(call.Fds[0], (byte*)&one, 8); }
        Assert.Equal(1UL, a.Drain());
        var enable = got.Single(r => r.Request == VhostUserRequest.SetVringEnable);
        Assert.Equal((1u, 1u), (enable.Index, enable.Number));
        Assert.All(got.Where(r => r.Request != VhostUserRequest.SetProtocolFeatures && r.Request != VhostUserRequest.GetVringBase),
            r => Assert.True(r.NeedReply));
    }

    [Fact]
    public void ConfigSpaceComesFromTheBackend()
    {
        _backend.Config = [0x00, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0xaa, 0xbb];
        using var frontend = Connect();
        var config = new byte[10];
        frontend.GetConfig(0, config);
        Assert.Equal(_backend.Config, config);
    }

    public static TheoryData<byte[], string> MalformedReplies => new()
    {
        { FakeVhostUserBackend.Reply(VhostUserRequest.GetFeatures, new byte[4]), "has 4 payload bytes; it must have 8" },
        { FakeVhostUserBackend.Reply(VhostUserRequest.GetFeatures, new byte[16]), "has 16 payload bytes; it must have 8" },
        { FakeVhostUserBackend.Reply(VhostUserRequest.GetProtocolFeatures, new byte[8]), "with a reply to request 15" },
        { FakeVhostUserBackend.Reply(VhostUserRequest.GetFeatures, new byte[8], VhostUserCodec.FlagVersion1), "without the reply flag" },
        { FakeVhostUserBackend.Reply(VhostUserRequest.GetFeatures, new byte[8], 2 | VhostUserCodec.FlagReply), "protocol version 2" },
        { [1, 0, 0, 0, 5, 0, 0, 0, 0, 0x10, 0, 0], "claims 4096 payload bytes" },
        // Truncated frames: the backend writes part of a reply and dies.
        { [1, 0, 0, 0, 5, 0], "the backend closed the connection in the middle of a reply" },
        { [1, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 1, 2], "the backend closed the connection in the middle of a reply" },
    };

    [Theory]
    [MemberData(nameof(MalformedReplies))]
    public void AMalformedReplyIsAOneLineError(byte[] reply, string expected)
    {
        _backend.Override = r => r.Request == VhostUserRequest.GetFeatures ? reply : null;
        _backend.HangUpAfterReply = true;
        using var frontend = Connect();
        var e = Assert.Throws<VhostUserException>(() => frontend.GetFeatures());
        Assert.Contains(expected, e.Message);
        Assert.StartsWith($"vhost-user socket {_backend.Path}: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ABackendThatNeverAnswersTimesOut()
    {
        _backend.Override = r => [];
        using var frontend = Connect(timeoutMs: 300);
        var e = Assert.Throws<VhostUserException>(() => frontend.GetFeatures());
        Assert.Equal($"vhost-user socket {_backend.Path}: GET_FEATURES: no reply within 0.3 s", e.Message);
    }

    [Fact]
    public void ABackendThatHangsUpIsNamed()
    {
        _backend.HangUpOn = VhostUserRequest.GetFeatures;
        using var frontend = Connect();
        var e = Assert.Throws<VhostUserException>(() => frontend.GetFeatures());
        Assert.Equal($"vhost-user socket {_backend.Path}: GET_FEATURES: the backend closed the connection", e.Message);
        var again = Assert.Throws<VhostUserException>(() => frontend.SetOwner());
        Assert.Contains("SET_OWNER", again.Message);
    }
}
