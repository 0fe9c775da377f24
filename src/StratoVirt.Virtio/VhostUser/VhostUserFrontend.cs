using System.Diagnostics;
using System.Text;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.VhostUser;

/// <summary>
/// The frontend side of one vhost-user connection: requests go out, with their fds by SCM_RIGHTS, and each reply is
/// awaited (up to <see cref="ReplyTimeoutMs"/>) and checked before the next request. Requests that have no reply of
/// their own ask for an acknowledgement once REPLY_ACK is negotiated, so a backend that refuses one is noticed at
/// once. Every failure is a <see cref="VhostUserException"/> naming the socket and the request; none is a crash or
/// a hang. Not thread-safe: the device calls it under its gate.
/// </summary>
public sealed class VhostUserFrontend : IDisposable
{
    /// <summary>How long a reply may take: backends answer at once, but the nested lab runs 10-50x slower.</summary>
    public const int ReplyTimeoutMs = 10_000;

    private readonly FileDescriptor _socket;
    private readonly byte[] _frame = new byte[VhostUserCodec.HeaderSize + VhostUserCodec.MaxPayload];
    private readonly int _timeoutMs;

    public VhostUserFrontend(FileDescriptor socket, string path, int timeoutMs = ReplyTimeoutMs)
    {
        _socket = socket;
        Path = path;
        _timeoutMs = timeoutMs;
    }

    /// <summary>Connects as a client to a backend listening on <paramref name="path"/> (virtiofsd and
    /// qemu-storage-daemon listen; the VMM connects even where the chardev says server,nowait, as upstream does).</summary>
    public static VhostUserFrontend Connect(string path)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(path);
        var socket = UnixSocket.Connect(bytes, out int errno);
        if (socket is null)
        {
            string why = errno switch
            {
                Libc.ENOENT or Libc.ECONNREFUSED => "nobody listens on it (start the backend first)",
                Libc.ENAMETOOLONG => $"the path is empty or longer than {UnixSocket.MaxPathBytes} bytes",
                _ => Libc.ErrorText(errno),
            };
            throw new VhostUserException($"vhost-user socket {path}: {why}");
        }
        return new VhostUserFrontend(socket, path);
    }

    public string Path { get; }

    /// <summary>The connection's fd, for a watch on hang-up.</summary>
    public int Fd => _socket.Fd;

    /// <summary>The protocol features both sides use (after <see cref="SetProtocolFeatures"/>).</summary>
    public ulong ProtocolFeatures { get; private set; }

    private bool ReplyAck => (ProtocolFeatures & VhostUserProtocolFeature.ReplyAck) != 0;

    private Span<byte> Payload => _frame.AsSpan(VhostUserCodec.HeaderSize);

    public ulong GetFeatures() => QueryU64(VhostUserRequest.GetFeatures);

    public void SetFeatures(ulong features) => Command(VhostUserRequest.SetFeatures, VhostUserCodec.WriteU64(Payload, features));

    public ulong GetProtocolFeatures() => QueryU64(VhostUserRequest.GetProtocolFeatures);

    /// <summary>Sets the protocol features (a subset of the backend's); REPLY_ACK applies from the next request.</summary>
    public void SetProtocolFeatures(ulong features)
    {
        Command(VhostUserRequest.SetProtocolFeatures, VhostUserCodec.WriteU64(Payload, features));
        ProtocolFeatures = features;
    }

    public void SetOwner() => Command(VhostUserRequest.SetOwner, 0);

    public ulong GetQueueNum() => QueryU64(VhostUserRequest.GetQueueNum);

    /// <summary>Sends guest RAM's regions, each with the fd the backend maps it from.</summary>
    public void SetMemTable(ReadOnlySpan<VhostUserMemoryRegion> regions)
    {
        int size = VhostUserCodec.WriteMemoryTable(Payload, regions);
        Span<int> fds = stackalloc int[regions.Length];
        for (int i = 0; i < regions.Length; i++) fds[i] = regions[i].Fd;
        Command(VhostUserRequest.SetMemTable, size, fds);
    }

    public void SetVringNum(int queue, uint size) =>
        Command(VhostUserRequest.SetVringNum, VhostUserCodec.WriteVringState(Payload, (uint)queue, size));

    /// <summary>Where the backend starts reading the available ring.</summary>
    public void SetVringBase(int queue, uint nextAvail) =>
        Command(VhostUserRequest.SetVringBase, VhostUserCodec.WriteVringState(Payload, (uint)queue, nextAvail));

    /// <summary>The queue's three areas, as addresses in this process (the memory table maps them).</summary>
    public void SetVringAddress(int queue, ulong descriptors, ulong used, ulong available) =>
        Command(VhostUserRequest.SetVringAddr, VhostUserCodec.WriteVringAddress(Payload, (uint)queue, descriptors, used, available));

    /// <summary>The eventfd the driver's notifications arrive on; the backend starts the ring once it has it.</summary>
    public void SetVringKick(int queue, int fd) => SetVringFd(VhostUserRequest.SetVringKick, queue, fd);

    /// <summary>The eventfd the backend signals when it used buffers the driver wants to hear about.</summary>
    public void SetVringCall(int queue, int fd) => SetVringFd(VhostUserRequest.SetVringCall, queue, fd);

    /// <summary>The eventfd the backend signals when it meets an error in the ring.</summary>
    public void SetVringErr(int queue, int fd) => SetVringFd(VhostUserRequest.SetVringErr, queue, fd);

    private void SetVringFd(VhostUserRequest request, int queue, int fd) =>
        Command(request, VhostUserCodec.WriteU64(Payload, (uint)queue), [fd]);

    public void SetVringEnable(int queue, bool enable) =>
        Command(VhostUserRequest.SetVringEnable, VhostUserCodec.WriteVringState(Payload, (uint)queue, enable ? 1u : 0u));

    /// <summary>Stops the ring; returns the next available index the backend would have read.</summary>
    public uint GetVringBase(int queue)
    {
        Send(VhostUserRequest.GetVringBase, VhostUserCodec.WriteVringState(Payload, (uint)queue, 0), [], needReply: false);
        var reply = Receive(VhostUserRequest.GetVringBase);
        try { return VhostUserCodec.ReadVringState(reply, (uint)queue, VhostUserRequest.GetVringBase); }
        catch (VhostUserException e) { throw Named(e); }
    }

    /// <summary>Reads <paramref name="config"/>'s length of the device's configuration space from <paramref name="offset"/>.</summary>
    public void GetConfig(uint offset, Span<byte> config)
    {
        Send(VhostUserRequest.GetConfig, VhostUserCodec.WriteConfigRequest(Payload, offset, config.Length), [], needReply: false);
        var reply = Receive(VhostUserRequest.GetConfig);
        try { VhostUserCodec.ReadConfig(reply, offset, config.Length).CopyTo(config); }
        catch (VhostUserException e) { throw Named(e); }
    }

    private ulong QueryU64(VhostUserRequest request)
    {
        Send(request, 0, [], needReply: false);
        return ReadU64(request);
    }

    private ulong ReadU64(VhostUserRequest request)
    {
        var reply = Receive(request);
        try { return VhostUserCodec.ReadU64(reply, request); }
        catch (VhostUserException e) { throw Named(e); }
    }

    /// <summary>A request without a reply of its own: acknowledged when REPLY_ACK is on.</summary>
    private void Command(VhostUserRequest request, int payloadSize, ReadOnlySpan<int> fds = default)
    {
        bool ack = ReplyAck;
        Send(request, payloadSize, fds, ack);
        if (!ack) return;
        ulong status = ReadU64(request);
        if (status != 0)
            throw new VhostUserException($"vhost-user socket {Path}: the backend refused {VhostUserCodec.Name(request)} (status {status})");
    }

    private void Send(VhostUserRequest request, int payloadSize, ReadOnlySpan<int> fds, bool needReply)
    {
        int length = VhostUserCodec.WriteHeader(_frame, request, payloadSize, needReply);
        var deadline = Stopwatch.StartNew();
        int sent = 0;
        while (sent < length)
        {
            // The fds go with the first byte only.
            int n = sent == 0 ? UnixSocket.SendWithFds(_socket.Fd, _frame.AsSpan(0, length), fds)
                : UnixSocket.Send(_socket.Fd, _frame.AsSpan(sent, length - sent));
            if (n > 0)
            {
                sent += n;
                continue;
            }
            if (n == -Libc.EAGAIN && deadline.ElapsedMilliseconds < _timeoutMs)
            {
                UnixSocket.WaitWritable(_socket.Fd, Remaining(deadline));
                continue;
            }
            throw Failure(request, n == -Libc.EAGAIN ? $"the backend took no request for {_timeoutMs / 1000} s"
                : $"sending failed: {Libc.ErrorText(-n)}");
        }
    }

    /// <summary>Reads one reply to <paramref name="request"/>: its checked header, then exactly its payload.</summary>
    private ReadOnlySpan<byte> Receive(VhostUserRequest request)
    {
        var deadline = Stopwatch.StartNew();
        ReadExactly(_frame.AsSpan(0, VhostUserCodec.HeaderSize), request, deadline);
        int size;
        try { size = VhostUserCodec.ReadReplyHeader(_frame, request); }
        catch (VhostUserException e) { throw Named(e); }
        var payload = _frame.AsSpan(VhostUserCodec.HeaderSize, size);
        ReadExactly(payload, request, deadline);
        return payload;
    }

    private void ReadExactly(Span<byte> buffer, VhostUserRequest request, Stopwatch deadline)
    {
        int got = 0;
        while (got < buffer.Length)
        {
            int n = UnixSocket.Receive(_socket.Fd, buffer[got..]);
            if (n > 0)
            {
                got += n;
                continue;
            }
            if (n == 0)
                throw Failure(request, got == 0 && buffer.Length == VhostUserCodec.HeaderSize
                    ? "the backend closed the connection" : "the backend closed the connection in the middle of a reply");
            if (n != -Libc.EAGAIN) throw Failure(request, $"receiving failed: {Libc.ErrorText(-n)}");
            if (deadline.ElapsedMilliseconds >= _timeoutMs)
                throw Failure(request, $"no reply within {_timeoutMs / 1000.0:0.#} s");
            UnixSocket.WaitReadable(_socket.Fd, Remaining(deadline));
        }
    }

    private int Remaining(Stopwatch deadline) => (int)Math.Max(1, _timeoutMs - deadline.ElapsedMilliseconds);

    private VhostUserException Failure(VhostUserRequest request, string what) =>
        new($"vhost-user socket {Path}: {VhostUserCodec.Name(request)}: {what}");

    /// <summary>A decoding error of the codec, with the socket it came from.</summary>
    private VhostUserException Named(VhostUserException e) => new($"vhost-user socket {Path}: {e.Message}");

    public void Dispose() => _socket.Dispose();
}
