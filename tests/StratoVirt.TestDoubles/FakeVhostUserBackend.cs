using System.Buffers.Binary;
using StratoVirt.Sys;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Tests.Virtio;

/// <summary>A request the fake backend received: its header fields, payload and the fds that came with it (kept
/// open until the backend is disposed).</summary>
public sealed record VhostUserReceived(VhostUserRequest Request, uint Flags, byte[] Payload, int[] Fds)
{
    public bool NeedReply => (Flags & VhostUserCodec.FlagNeedReply) != 0;
    public ulong U64 => BinaryPrimitives.ReadUInt64LittleEndian(Payload);
    public uint Index => BinaryPrimitives.ReadUInt32LittleEndian(Payload);
    public uint Number => BinaryPrimitives.ReadUInt32LittleEndian(Payload.AsSpan(4));
}

/// <summary>
/// A vhost-user backend in test code: it listens on a unix socket, takes one frontend, and answers on its own thread
/// as a well-behaved backend would (its features, protocol features, queue count, configuration space, acks), or
/// with whatever raw bytes <see cref="Override"/> returns for a request, so tests can send malformed replies. It
/// records every request with its fds.
/// </summary>
public sealed unsafe class FakeVhostUserBackend : IDisposable
{
    private readonly FileDescriptor _listener;
    private readonly Thread _thread;
    private readonly List<VhostUserReceived> _received = [];
    private volatile bool _stop, _hangUpRequested;
    private volatile FileDescriptor? _client;

    public FakeVhostUserBackend(string path)
    {
        Path = path;
        _listener = UnixSocket.Listen(path);
        _thread = new Thread(Serve) { IsBackground = true, Name = "fake vhost-user backend" };
        _thread.Start();
    }

    public string Path { get; }

    public ulong Features { get; set; } =
        StratoVirt.Virtio.VirtioFeature.Version1 | StratoVirt.Virtio.VirtioFeature.RingEventIdx | VhostUserFeature.ProtocolFeatures;

    public ulong ProtocolFeatures { get; set; } = VhostUserProtocolFeature.Supported;

    public ulong QueueCount { get; set; } = 2;

    public byte[] Config { get; set; } = [];

    /// <summary>The status a NEED_REPLY ack carries for this request (0: success).</summary>
    public Func<VhostUserRequest, ulong> AckStatus { get; set; } = _ => 0;

    /// <summary>Raw bytes to answer a request with instead of the normal reply; null: the normal reply. An empty
    /// array answers nothing.</summary>
    public Func<VhostUserReceived, byte[]?>? Override { get; set; }

    /// <summary>Closes the connection after sending the first reply (a truncated frame then stays truncated).</summary>
    public bool HangUpAfterReply { get; set; }

    /// <summary>Closes the connection after receiving this request, without answering it.</summary>
    public VhostUserRequest? HangUpOn { get; set; }

    public IReadOnlyList<VhostUserReceived> Received
    {
        get { lock (_received) return [.. _received]; }
    }

    /// <summary>Whether a frontend connected and the backend still holds the connection.</summary>
    public bool Connected => _client is not null;

    /// <summary>Closes the connection, as a backend process that dies; returns once it is closed.</summary>
    public void HangUp()
    {
        _hangUpRequested = true;
        long until = Environment.TickCount64 + 5000;
        while (_client is not null && _thread.IsAlive && Environment.TickCount64 < until) Thread.Sleep(5);
    }

    private void Close()
    {
        var client = _client;
        _client = null;
        client?.Dispose();
    }

    /// <summary>Waits until a request of that kind has arrived; null on timeout.</summary>
    public VhostUserReceived? WaitFor(VhostUserRequest request, int count = 1, int timeoutMs = 5000)
    {
        long until = Environment.TickCount64 + timeoutMs;
        while (Environment.TickCount64 < until)
        {
            var matching = Received.Where(r => r.Request == request).ToList();
            if (matching.Count >= count) return matching[count - 1];
            Thread.Sleep(5);
        }
        return null;
    }

    /// <summary>A reply frame: header (with the reply flag) and payload.</summary>
    public static byte[] Reply(VhostUserRequest request, ReadOnlySpan<byte> payload, uint flags = VhostUserCodec.FlagVersion1 | VhostUserCodec.FlagReply)
    {
        var frame = new byte[VhostUserCodec.HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(8), (uint)payload.Length);
        payload.CopyTo(frame.AsSpan(VhostUserCodec.HeaderSize));
        return frame;
    }

    public static byte[] U64Reply(VhostUserRequest request, ulong value)
    {
        var payload = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, value);
        return Reply(request, payload);
    }

    private void Serve()
    {
        while (!_stop && _client is null)
        {
            if (!UnixSocket.WaitReadable(_listener.Fd, 50)) continue;
            _client = UnixSocket.Accept(_listener, out _);
        }
        var header = new byte[VhostUserCodec.HeaderSize];
        while (!_stop && !_hangUpRequested && _client is { } client)
        {
            if (!UnixSocket.WaitReadable(client.Fd, 50)) continue;
            var fds = new List<int>();
            if (!ReadExactly(client, header, fds)) break;
            var request = (VhostUserRequest)BinaryPrimitives.ReadUInt32LittleEndian(header);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
            var payload = new byte[BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8))];
            if (!ReadExactly(client, payload, fds)) break;
            var received = new VhostUserReceived(request, flags, payload, [.. fds]);
            lock (_received) _received.Add(received);
            if (HangUpOn == request) break;
            byte[]? reply = Override?.Invoke(received) ?? NormalReply(received);
            if (reply is { Length: > 0 }) SendAll(client, reply);
            if (reply is not null && HangUpAfterReply) break;
        }
        Close();
    }

    private byte[]? NormalReply(VhostUserReceived r) => r.Request switch
    {
        VhostUserRequest.GetFeatures => U64Reply(r.Request, Features),
        VhostUserRequest.GetProtocolFeatures => U64Reply(r.Request, ProtocolFeatures),
        VhostUserRequest.GetQueueNum => U64Reply(r.Request, QueueCount),
        VhostUserRequest.GetVringBase => Reply(r.Request, r.Payload.AsSpan(0, 4).ToArray().Concat(new byte[4]).ToArray()),
        VhostUserRequest.GetConfig => ConfigReply(r),
        _ => r.NeedReply ? U64Reply(r.Request, AckStatus(r.Request)) : null,
    };

    private byte[] ConfigReply(VhostUserReceived r)
    {
        uint offset = BinaryPrimitives.ReadUInt32LittleEndian(r.Payload);
        int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(r.Payload.AsSpan(4));
        var payload = new byte[VhostUserCodec.ConfigHeaderSize + size];
        r.Payload.AsSpan(0, VhostUserCodec.ConfigHeaderSize).CopyTo(payload);
        for (int i = 0; i < size && offset + i < Config.Length; i++) payload[VhostUserCodec.ConfigHeaderSize + i] = Config[offset + i];
        return Reply(r.Request, payload);
    }

    private static void SendAll(FileDescriptor client, byte[] data)
    {
        int sent = 0;
        while (sent < data.Length)
        {
            int n = UnixSocket.Send(client.Fd, data.AsSpan(sent));
            if (n > 0) sent += n;
            else if (n == -Libc.EAGAIN) UnixSocket.WaitWritable(client.Fd, 100);
            else return;
        }
    }

    /// <summary>Reads exactly the buffer, collecting any fds that come with it; false at end of stream.</summary>
    private bool ReadExactly(FileDescriptor client, byte[] buffer, List<int> fds)
    {
        int got = 0;
        long until = Environment.TickCount64 + 5000;
        while (got < buffer.Length)
        {
            int n = ReceiveWithFds(client.Fd, buffer.AsSpan(got), fds);
            if (n > 0) got += n;
            else if (n == 0) return false;
            else if (n == -Libc.EAGAIN && Environment.TickCount64 < until) UnixSocket.WaitReadable(client.Fd, 50);
            else return false;
        }
        return true;
    }

    private static int ReceiveWithFds(int fd, Span<byte> buffer, List<int> fds)
    {
        const int controlBytes = CmsgHdr.Size + 16 * sizeof(int);
        byte* control = stackalloc byte[controlBytes];
        fixed (byte* p = buffer)
        {
            var iov = new Iovec { Base = (nint)p, Length = (nuint)buffer.Length };
            var msg = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = controlBytes };
            nint n = Libc.RecvMsg(fd, &msg, Libc.MSG_DONTWAIT | Libc.MSG_CMSG_CLOEXEC);
            if (n < 0) return -System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (msg.ControlLength >= CmsgHdr.Size)
            {
                var header = (CmsgHdr*)control;
                if (header->Level == Libc.SOL_SOCKET && header->Type == Libc.SCM_RIGHTS)
                    for (int i = 0; i < ((int)header->Length - CmsgHdr.Size) / sizeof(int); i++)
                        fds.Add(((int*)(control + CmsgHdr.Size))[i]);
            }
            return (int)n;
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
        Close();
        _listener.Dispose();
        Libc.Unlink(Path);
        foreach (var r in Received)
            foreach (int fd in r.Fds) Libc.Close(fd);
    }
}
