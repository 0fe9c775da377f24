using StratoVirt.Sys;
using StratoVirt.Tests;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Fuzz;

/// <summary>
/// The vhost-user frontend reading a backend's replies: the input's requests go out on a real connection (a unix
/// socket the target listens on), and the input's reply bytes are what the backend sent, ending where the input
/// does (the backend then shuts its side, so a missing reply is an end of stream, never a wait). Each reply is
/// checked by the codec: header (version, reply flag, the request it answers, size) and payload (GET_FEATURES,
/// GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_VRING_BASE, GET_CONFIG, REPLY_ACK once negotiated). A reply that
/// breaks the protocol must be a one-line <see cref="VhostUserException"/>, which ends the run, as it ends the
/// device's start or its backend's use.
/// </summary>
/// <remarks>Input: request count u8, the requests u8 each (low 4 bits the request, high 4 bits its argument: a
/// queue, a configuration offset and size, the protocol features to set), then the backend's bytes (at most
/// <see cref="MaxReplies"/>).</remarks>
public sealed class VhostUserTarget : IFuzzTarget, IDisposable
{
    /// <summary>The backend's bytes a run sends: more than a socket holds would block the sender.</summary>
    public const int MaxReplies = 16 << 10;

    /// <summary>GET_CONFIG sizes the argument picks from: a byte, a word, virtio-blk's and virtiofs's spaces, the
    /// largest.</summary>
    private static readonly int[] ConfigSizes = [1, 4, 8, 60, 40, 256, 2, 12];

    private readonly TempDir _dir = new();
    private readonly FileDescriptor _listener;
    private readonly EventFd _event = new();
    private readonly byte[] _drain = new byte[4096];

    public VhostUserTarget() => _listener = UnixSocket.Listen(SocketPath);

    private string SocketPath => Path.Combine(_dir.Path, "vu.sock");

    public void Run(ReadOnlySpan<byte> input)
    {
        var r = new FuzzReader(input);
        var requests = r.Bytes(r.U8());
        var replies = r.Bytes(Math.Min(r.Remaining, MaxReplies));

        using var frontend = VhostUserFrontend.Connect(SocketPath);
        using var backend = UnixSocket.Accept(_listener, out int errno)
            ?? throw new InvalidOperationException($"the target's listener accepted nothing: errno {errno}");
        while (!replies.IsEmpty)
        {
            int n = UnixSocket.Send(backend.Fd, replies);
            if (n <= 0) throw new InvalidOperationException($"the target could not queue the backend's replies: {n}");
            replies = replies[n..];
        }
        UnixSocket.Shutdown(backend.Fd, Libc.SHUT_WR);
        try
        {
            foreach (byte request in requests)
            {
                Send(frontend, request);
                while (UnixSocket.Receive(backend.Fd, _drain) > 0) { } // the backend reads what it was sent
            }
        }
        catch (VhostUserException e) when (!e.Message.Contains('\n'))
        {
        }
    }

    private void Send(VhostUserFrontend frontend, byte request)
    {
        int argument = request >> 4;
        int queue = argument & 1;
        switch (request & 0xF)
        {
            case 0: frontend.GetFeatures(); break;
            case 1: frontend.GetProtocolFeatures(); break;
            case 2: frontend.SetProtocolFeatures((ulong)argument & VhostUserProtocolFeature.Supported); break;
            case 3: frontend.GetQueueNum(); break;
            case 4: frontend.SetOwner(); break;
            case 5: frontend.GetVringBase(queue); break;
            case 6:
                Span<byte> config = stackalloc byte[ConfigSizes[argument & 7]];
                frontend.GetConfig((uint)(argument >> 3) * 4, config);
                break;
            case 7: frontend.SetVringEnable(queue, (argument & 2) != 0); break;
            case 8: frontend.SetFeatures((ulong)argument << 30); break;
            case 9: frontend.SetVringNum(queue, 256); break;
            case 10: frontend.SetVringBase(queue, (uint)argument); break;
            case 11: frontend.SetVringAddress(queue, 0x1000, 0x2000, 0x3000); break;
            case 12: frontend.SetVringKick(queue, _event.Fd); break;
            case 13: frontend.SetVringCall(queue, _event.Fd); break;
            case 14: frontend.SetVringErr(queue, _event.Fd); break;
            default: frontend.SetMemTable([new VhostUserMemoryRegion(0, 1 << 20, 0x7F00_0000_0000, _event.Fd, 0)]); break;
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        _event.Dispose();
        _dir.Dispose();
    }
}
