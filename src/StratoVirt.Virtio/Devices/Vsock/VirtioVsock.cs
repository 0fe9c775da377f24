using System.Buffers.Binary;
using System.Buffers.Text;
using System.Text;
using StratoVirt.Devices.State;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Devices.Vsock;

/// <summary>
/// virtio-vsock (virtio 1.2, section 5.10) with the host side in userspace over Unix domain sockets, for hosts
/// without /dev/vhost-vsock. Stream sockets only. The host side follows the "hybrid vsock" convention:
/// <list type="bullet">
/// <item>A host program connects to the listening socket <see cref="UdsPath"/> and writes "CONNECT &lt;port&gt;\n";
/// the device opens a connection to that guest port and answers "OK &lt;host port&gt;\n" once the guest accepts
/// (the socket is closed if it refuses). The stream then carries the connection's data both ways.</item>
/// <item>A guest connecting to CID 2 (the host), port X, is connected to the Unix socket "&lt;UdsPath&gt;_X";
/// if nothing listens there the guest gets a reset (connection refused).</item>
/// </list>
/// Flow control is credit based both ways: the device never sends the guest more than its buf_alloc/fwd_cnt allow,
/// and advertises <see cref="BufferSize"/> bytes per connection, sending CREDIT_UPDATE as host sockets drain.
/// </summary>
public sealed class VirtioVsock : VirtioDevice
{
    public const ulong HostCid = 2;
    public const int HeaderSize = 44;
    /// <summary>Longest payload accepted from the guest in one packet, and sent to it.</summary>
    public const int MaxPayload = 64 * 1024;
    /// <summary>The receive buffer each connection advertises to the guest (buf_alloc).</summary>
    public const uint BufferSize = 256 * 1024;
    public const int MaxConnections = 1024;
    private const int MaxPendingResets = 1024;
    /// <summary>Host ports the device picks for host-initiated connections start here.</summary>
    private const uint FirstLocalPort = 1u << 30;

    // virtio_vsock_hdr fields (all little-endian).
    private const int SrcCid = 0, DstCid = 8, SrcPort = 16, DstPort = 20, Len = 24, Type = 28, Op = 30, Flags = 32,
        BufAlloc = 36, FwdCnt = 40;

    public const ushort TypeStream = 1;
    public const ushort OpRequest = 1, OpResponse = 2, OpRst = 3, OpShutdown = 4, OpRw = 5, OpCreditUpdate = 6,
        OpCreditRequest = 7;
    public const uint ShutdownRcv = 1, ShutdownSend = 2;

    private enum State { ReadingConnect, AwaitingResponse, Established }

    /// <summary>One host socket: a host client still sending its CONNECT line, or a vsock connection.</summary>
    private sealed class Connection(FileDescriptor socket)
    {
        public readonly FileDescriptor Socket = socket;
        public Action<uint> Handler = null!;
        public ulong Token;
        public uint Armed;
        public State State;
        public bool Closed, InReady;
        public uint HostPort, GuestPort;
        public byte[]? Line;
        public int LineLength;

        /// <summary>The host socket may have data (or EOF) to read; it is not polled for input meanwhile.</summary>
        public bool Readable;
        public bool HostEof, GuestNoSend, GuestNoRecv;
        public bool SendRequest, SendResponse, SendCreditUpdate;
        public uint SendShutdown;

        // Credit: what the guest advertised, what was sent to it, and what the host socket took of its data.
        public uint PeerBufAlloc, PeerFwdCnt, TxCnt, FwdCnt, LastSentFwdCnt;

        /// <summary>Bytes the host socket did not take yet; the first <see cref="UncountedOut"/> are the OK line.</summary>
        public VsockByteRing? Out;
        public int UncountedOut;
        public int OutCount => Out?.Count ?? 0;

        public ulong Key => ((ulong)HostPort << 32) | GuestPort;
    }

    private readonly FileDescriptor _listener;
    private readonly byte[] _pathBytes;
    private readonly byte[] _config = new byte[8];
    private readonly DescriptorChain _chain = new();
    private readonly byte[] _scratch = new byte[MaxPayload];
    private readonly Dictionary<ulong, Connection> _connections = [];
    private readonly HashSet<Connection> _sockets = [];
    private readonly Queue<Connection> _ready = new();
    private readonly Queue<ulong> _resets = new();
    private uint _nextLocalPort = FirstLocalPort;
    private bool _disposed;

    /// <param name="guestCid">The guest's context id, 3 to 2^32-2.</param>
    /// <param name="udsPath">The Unix socket the device listens on; guest connections to host port X go to
    /// "<paramref name="udsPath"/>_X". A stale socket file there (nobody listening) is replaced; a live socket
    /// or another kind of file is refused.</param>
    public VirtioVsock(ulong guestCid, string udsPath) : base(VirtioDeviceId.Vsock, 3)
    {
        if (guestCid < 3 || guestCid >= uint.MaxValue)
            throw new ArgumentException($"vsock guest-cid {guestCid} is out of range: it must be 3 to {uint.MaxValue - 1}");
        if (string.IsNullOrEmpty(udsPath)) throw new ArgumentException("vsock uds-path must not be empty");
        _pathBytes = Encoding.UTF8.GetBytes(udsPath);
        // Room for "_4294967295" after the path, so that every guest-initiated connection's path fits as well.
        int max = UnixSocket.MaxPathBytes - 11;
        if (_pathBytes.Length > max)
            throw new ArgumentException($"vsock uds-path '{udsPath}' is {_pathBytes.Length} bytes; at most {max} are allowed");
        GuestCid = guestCid;
        UdsPath = udsPath;
        BinaryPrimitives.WriteUInt64LittleEndian(_config, guestCid);
        try { _listener = UnixSocket.Listen(udsPath, backlog: 64); }
        catch (SysException e) { throw new ArgumentException($"vsock uds-path '{udsPath}': {e.Message}"); }
    }

    public ulong GuestCid { get; }
    public string UdsPath { get; }

    /// <summary>Open vsock connections (for tests and diagnostics).</summary>
    public int ConnectionCount
    {
        get { lock (Gate) return _connections.Count; }
    }

    protected override ulong DeviceFeatures => 0;

    public override void ReadConfig(uint offset, Span<byte> data) => ReadFrom(_config, offset, data);

    protected override void OnActivate() => Watch(_listener.Fd, Libc.EPOLLIN, _ => AcceptClients());

    protected override void OnReset()
    {
        // The base class already stopped watching every socket.
        foreach (var c in _sockets)
        {
            c.Closed = true;
            c.Socket.Dispose();
        }
        _sockets.Clear();
        _connections.Clear();
        _ready.Clear();
        _resets.Clear();
    }

    public override void ProcessQueue(int index)
    {
        if (index == 1)
        {
            var tx = Queue(1);
            bool any = false;
            while (tx.Pop(_chain))
            {
                HandlePacket(_chain);
                tx.AddUsed(_chain.Head, 0);
                any = true;
            }
            if (any) SignalUsed(tx);
        }
        // Queue 0 (rx): new buffers may unblock waiting packets. Queue 2 (event): buffers are kept for events,
        // of which this device sends one, after a restore.
        PumpRx();
        if (_transportResetPending) SendTransportReset();
    }

    /// <summary>Set by a restore: the guest's connections lived in the host sockets of the VMM that took the
    /// snapshot, so the driver is told that the transport was reset (it then closes them all), as Firecracker does.</summary>
    private bool _transportResetPending;

    private const uint EventTransportReset = 0;

    /// <summary>VIRTIO_VSOCK_EVENT_TRANSPORT_RESET into the event queue's next buffer; waits for one if there is none.</summary>
    private void SendTransportReset()
    {
        var events = Queue(2);
        if (!events.Pop(_chain)) return;
        uint written = 0;
        if (_chain.WritableLength >= sizeof(uint))
        {
            Span<byte> e = stackalloc byte[sizeof(uint)];
            BinaryPrimitives.WriteUInt32LittleEndian(e, EventTransportReset);
            _chain.Write(0, e);
            written = sizeof(uint);
        }
        events.AddUsed(_chain.Head, written);
        _transportResetPending = false;
        SignalUsed(events);
    }

    // ---- guest to host ----

    private void HandlePacket(DescriptorChain chain)
    {
        Span<byte> h = stackalloc byte[HeaderSize];
        if (chain.ReadableLength < HeaderSize)
        {
            Drop($"a {chain.ReadableLength}-byte packet is shorter than the {HeaderSize}-byte header");
            return;
        }
        chain.Read(0, h);
        ulong srcCid = BinaryPrimitives.ReadUInt64LittleEndian(h[SrcCid..]);
        ulong dstCid = BinaryPrimitives.ReadUInt64LittleEndian(h[DstCid..]);
        uint guestPort = BinaryPrimitives.ReadUInt32LittleEndian(h[SrcPort..]);
        uint hostPort = BinaryPrimitives.ReadUInt32LittleEndian(h[DstPort..]);
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(h[Len..]);
        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(h[Type..]);
        ushort op = BinaryPrimitives.ReadUInt16LittleEndian(h[Op..]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(h[Flags..]);
        if (srcCid != GuestCid || dstCid != HostCid)
        {
            Drop($"packet from cid {srcCid} to cid {dstCid}; expected {GuestCid} to {HostCid}");
            return;
        }
        ulong key = ((ulong)hostPort << 32) | guestPort;
        _connections.TryGetValue(key, out var c);
        if (type != TypeStream || len > MaxPayload || HeaderSize + (ulong)len > chain.ReadableLength)
        {
            Drop(type != TypeStream ? $"socket type {type} is not supported"
                : $"payload length {len} exceeds the packet ({chain.ReadableLength - HeaderSize} bytes) or {MaxPayload}");
            if (op != OpRst) Reset(c, key);
            return;
        }
        if (c is not null)
        {
            c.PeerBufAlloc = BinaryPrimitives.ReadUInt32LittleEndian(h[BufAlloc..]);
            c.PeerFwdCnt = BinaryPrimitives.ReadUInt32LittleEndian(h[FwdCnt..]);
        }
        else if (op == OpRequest)
        {
            ConnectToHost(key, h);
            return;
        }
        else
        {
            if (op != OpRst) QueueReset(key); // nothing to reset, and never answer a reset with one
            return;
        }

        if (c.State == State.AwaitingResponse && op != OpResponse && op != OpRst)
        {
            Reset(c, key);
            return;
        }
        switch (op)
        {
            case OpResponse:
                if (c.State != State.AwaitingResponse) { Reset(c, key); return; }
                c.State = State.Established;
                Span<byte> ok = stackalloc byte[24];
                "OK "u8.CopyTo(ok);
                Utf8Formatter.TryFormat(c.HostPort, ok[3..], out int digits);
                ok[3 + digits] = (byte)'\n';
                c.UncountedOut = 4 + digits;
                WriteToHost(c, ok[..(4 + digits)], counted: false);
                break;
            case OpRst:
                Close(c, reset: false);
                return;
            case OpRequest:
                Drop($"a second REQUEST for connection {hostPort}:{guestPort}");
                Reset(c, key);
                return;
            case OpShutdown:
                if ((flags & ShutdownRcv) != 0)
                {
                    c.GuestNoRecv = true;
                    c.Readable = false;
                }
                if ((flags & ShutdownSend) != 0) c.GuestNoSend = true;
                FinishShutdown(c);
                break;
            case OpRw:
                if (c.GuestNoSend)
                {
                    Drop($"data on connection {hostPort}:{guestPort} after the guest shut down sending");
                    Reset(c, key);
                    return;
                }
                if (len == 0) break;
                if (len > BufferSize - (uint)(c.OutCount - c.UncountedOut))
                {
                    Drop($"connection {hostPort}:{guestPort} overran its credit ({len} bytes, {c.OutCount} queued)");
                    Reset(c, key);
                    return;
                }
                chain.Read(HeaderSize, _scratch.AsSpan(0, (int)len));
                WriteToHost(c, _scratch.AsSpan(0, (int)len), counted: true);
                break;
            case OpCreditUpdate:
                break; // the credit fields were taken above
            case OpCreditRequest:
                c.SendCreditUpdate = true;
                break;
            default:
                Drop($"unknown operation {op}");
                Reset(c, key);
                return;
        }
        if (!c.Closed)
        {
            Arm(c);
            Enqueue(c);
        }
    }

    private void ConnectToHost(ulong key, ReadOnlySpan<byte> h)
    {
        uint hostPort = (uint)(key >> 32);
        if (_connections.Count >= MaxConnections)
        {
            Drop($"connection to host port {hostPort} refused: {MaxConnections} connections are open");
            QueueReset(key);
            return;
        }
        Span<byte> path = stackalloc byte[_pathBytes.Length + 11];
        _pathBytes.CopyTo(path);
        path[_pathBytes.Length] = (byte)'_';
        Utf8Formatter.TryFormat(hostPort, path[(_pathBytes.Length + 1)..], out int digits);
        var socket = UnixSocket.Connect(path[..(_pathBytes.Length + 1 + digits)], out int errno);
        if (socket is null)
        {
            if (Log.IsEnabled(LogLevel.Debug))
                Log.Debug($"vsock {Id}: guest connection to {UdsPath}_{hostPort}: {Libc.ErrorText(errno)}");
            QueueReset(key);
            return;
        }
        var c = NewConnection(socket);
        c.State = State.Established;
        c.HostPort = hostPort;
        c.GuestPort = (uint)key;
        c.PeerBufAlloc = BinaryPrimitives.ReadUInt32LittleEndian(h[BufAlloc..]);
        c.PeerFwdCnt = BinaryPrimitives.ReadUInt32LittleEndian(h[FwdCnt..]);
        c.SendResponse = true;
        _connections.Add(key, c);
        Arm(c);
        Enqueue(c);
    }

    /// <summary>After a guest SHUTDOWN or a drained host write: half-close the host socket once the guest will send
    /// nothing more, and end the connection (with the RST that completes a clean close) once it is done both ways.</summary>
    private void FinishShutdown(Connection c)
    {
        if (!c.GuestNoSend || c.OutCount > 0) return;
        if (c.GuestNoRecv) Close(c, reset: true);
        else UnixSocket.Shutdown(c.Socket.Fd, Libc.SHUT_WR);
    }

    /// <summary>Writes to the host socket what it takes now and queues the rest; only <paramref name="counted"/>
    /// bytes (guest data) advance fwd_cnt.</summary>
    private void WriteToHost(Connection c, ReadOnlySpan<byte> data, bool counted)
    {
        int sent = 0;
        if (c.OutCount == 0)
        {
            int n = UnixSocket.Send(c.Socket.Fd, data);
            if (n < 0 && n != -Libc.EAGAIN)
            {
                Reset(c, c.Key);
                return;
            }
            sent = Math.Max(n, 0);
            if (counted) Forwarded(c, sent);
            else c.UncountedOut -= sent;
        }
        if (sent < data.Length)
        {
            c.Out ??= new VsockByteRing((int)BufferSize + 32);
            c.Out.Append(data[sent..]); // fits: guest data is bounded by its credit, the OK line comes first
        }
    }

    /// <summary>The socket is writable again: write what was queued.</summary>
    private void Flush(Connection c)
    {
        while (c.OutCount > 0)
        {
            int k = UnixSocket.Send(c.Socket.Fd, c.Out!.Front);
            if (k == -Libc.EAGAIN) return;
            if (k < 0)
            {
                Reset(c, c.Key);
                return;
            }
            int uncounted = Math.Min(k, c.UncountedOut);
            c.UncountedOut -= uncounted;
            c.Out.Consume(k);
            Forwarded(c, k - uncounted);
        }
        FinishShutdown(c);
    }

    /// <summary>Counts guest bytes the host took; a CREDIT_UPDATE goes out once the guest's view is a quarter behind.</summary>
    private void Forwarded(Connection c, int bytes)
    {
        c.FwdCnt += (uint)bytes;
        if (c.FwdCnt - c.LastSentFwdCnt >= BufferSize / 4) c.SendCreditUpdate = true;
    }

    // ---- host sockets ----

    private Connection NewConnection(FileDescriptor socket)
    {
        var c = new Connection(socket);
        c.Handler = ready => OnSocket(c, ready);
        _sockets.Add(c);
        return c;
    }

    private void AcceptClients()
    {
        while (true)
        {
            var socket = UnixSocket.Accept(_listener, out int errno);
            if (socket is null)
            {
                if (errno != Libc.EAGAIN) Log.Warn($"vsock {Id}: accept on {UdsPath}: {Libc.ErrorText(errno)}");
                return;
            }
            if (_sockets.Count >= MaxConnections)
            {
                socket.Dispose();
                Log.Warn($"vsock {Id}: host connection on {UdsPath} refused: {MaxConnections} connections are open");
                continue;
            }
            var c = NewConnection(socket);
            c.State = State.ReadingConnect;
            c.Line = new byte[32];
            Arm(c);
        }
    }

    /// <summary>What the socket is polled for. Watches are one-shot, so a hang-up (which epoll reports whatever
    /// was asked for) is seen once and cannot spin while the connection waits for the guest.</summary>
    private static uint Interest(Connection c) => c.State switch
    {
        State.ReadingConnect => Libc.EPOLLIN,
        State.Established =>
            (!c.Readable && !c.HostEof && !c.GuestNoRecv ? Libc.EPOLLIN : 0) | (c.OutCount > 0 ? Libc.EPOLLOUT : 0),
        _ => 0,
    };

    private void Arm(Connection c)
    {
        uint want = Interest(c);
        if (want == c.Armed) return;
        if (c.Token == 0) c.Token = Watch(c.Socket.Fd, want | Libc.EPOLLONESHOT, c.Handler);
        else Loop.Modify(c.Token, want | Libc.EPOLLONESHOT);
        c.Armed = want;
    }

    private void OnSocket(Connection c, uint ready)
    {
        c.Armed = 0; // the one-shot watch fired
        if (c.Closed) return;
        if (c.State == State.ReadingConnect) ReadConnectLine(c);
        else if (c.State == State.Established)
        {
            if (c.OutCount > 0 && (ready & (Libc.EPOLLOUT | Libc.EPOLLERR | Libc.EPOLLHUP)) != 0) Flush(c);
            if (!c.Closed && !c.HostEof && !c.GuestNoRecv &&
                (ready & (Libc.EPOLLIN | Libc.EPOLLERR | Libc.EPOLLHUP)) != 0) c.Readable = true;
        }
        if (!c.Closed)
        {
            Arm(c);
            Enqueue(c);
        }
        PumpRx();
    }

    /// <summary>Reads a host client's "CONNECT &lt;port&gt;\n" a byte at a time, so that data after it stays in the socket.</summary>
    private void ReadConnectLine(Connection c)
    {
        Span<byte> one = stackalloc byte[1];
        while (true)
        {
            int n = UnixSocket.Receive(c.Socket.Fd, one);
            if (n == -Libc.EAGAIN) return;
            if (n <= 0)
            {
                Close(c, reset: false);
                return;
            }
            if (one[0] == (byte)'\n') break;
            if (c.LineLength == c.Line!.Length)
            {
                RefuseHostClient(c, "sent an over-long line");
                return;
            }
            c.Line[c.LineLength++] = one[0];
        }
        var line = c.Line.AsSpan(0, c.LineLength);
        if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
        if (!line.StartsWith("CONNECT "u8) || !Utf8Parser.TryParse(line[8..], out uint port, out int used) ||
            used != line.Length - 8)
        {
            RefuseHostClient(c, "did not send \"CONNECT <port>\"");
            return;
        }
        if (_connections.Count >= MaxConnections)
        {
            RefuseHostClient(c, $"cannot connect: {MaxConnections} connections are open");
            return;
        }
        uint local = _nextLocalPort;
        while (_connections.ContainsKey(((ulong)local << 32) | port))
            local = local == uint.MaxValue ? FirstLocalPort : local + 1;
        _nextLocalPort = local == uint.MaxValue ? FirstLocalPort : local + 1;
        c.Line = null;
        c.State = State.AwaitingResponse;
        c.HostPort = local;
        c.GuestPort = port;
        c.SendRequest = true;
        _connections.Add(c.Key, c);
    }

    private void RefuseHostClient(Connection c, string why)
    {
        Log.Warn($"vsock {Id}: a host client of {UdsPath} {why}; closing it");
        Close(c, reset: false);
    }

    private void Close(Connection c, bool reset)
    {
        if (c.Closed) return;
        c.Closed = true;
        if (c.Token != 0) Unwatch(c.Token);
        c.Socket.Dispose();
        _sockets.Remove(c);
        if (c.State != State.ReadingConnect) _connections.Remove(c.Key);
        if (reset) QueueReset(c.Key);
    }

    /// <summary>Ends a connection (if there is one) and tells the guest with a RST.</summary>
    private void Reset(Connection? c, ulong key)
    {
        if (c is not null) Close(c, reset: true);
        else QueueReset(key);
    }

    private void QueueReset(ulong key)
    {
        if (_resets.Count < MaxPendingResets) _resets.Enqueue(key);
        else Drop("too many resets are waiting for receive buffers");
    }

    // ---- host to guest ----

    private static uint Credit(Connection c)
    {
        uint inFlight = c.TxCnt - c.PeerFwdCnt;
        return inFlight >= c.PeerBufAlloc ? 0 : c.PeerBufAlloc - inFlight;
    }

    private static bool HasWork(Connection c) =>
        !c.Closed && (c.SendRequest || c.SendResponse || c.SendShutdown != 0 || c.SendCreditUpdate ||
            (c.State == State.Established && c.Readable && Credit(c) > 0));

    private void Enqueue(Connection c)
    {
        if (c.InReady || !HasWork(c)) return;
        c.InReady = true;
        _ready.Enqueue(c);
    }

    /// <summary>Fills receive buffers with resets and connections' packets, round robin, until either runs out.</summary>
    private void PumpRx()
    {
        var rx = Queue(0);
        bool any = false;
        while (_resets.Count > 0 || _ready.Count > 0)
        {
            if (!rx.Pop(_chain)) break; // resumes when the guest posts buffers (ProcessQueue(0))
            if (_chain.WritableLength <= HeaderSize)
                throw new VirtqueueException(
                    $"queue 0: a {_chain.WritableLength}-byte vsock receive buffer cannot hold a header and data");
            uint written;
            if (_resets.TryDequeue(out ulong key))
            {
                written = WriteHeader((uint)(key >> 32), (uint)key, OpRst, 0, 0, 0, 0);
            }
            else
            {
                var c = _ready.Dequeue();
                c.InReady = false;
                written = c.Closed ? 0 : Fill(c);
                if (written == 0)
                {
                    rx.Unpop();
                    continue;
                }
                Enqueue(c);
            }
            rx.AddUsed(_chain.Head, written);
            any = true;
        }
        if (any) SignalUsed(rx);
    }

    /// <summary>Writes one packet of <paramref name="c"/> into the popped receive chain; 0 if it had none after all.</summary>
    private uint Fill(Connection c)
    {
        if (c.SendRequest)
        {
            c.SendRequest = false;
            return Control(c, OpRequest, 0);
        }
        if (c.SendResponse)
        {
            c.SendResponse = false;
            return Control(c, OpResponse, 0);
        }
        if (c.State == State.Established && c.Readable)
        {
            uint credit = Credit(c);
            if (credit > 0)
            {
                int max = (int)Math.Min(Math.Min(credit, _chain.WritableLength - HeaderSize), MaxPayload);
                int n = UnixSocket.Receive(c.Socket.Fd, _scratch.AsSpan(0, max));
                if (n > 0)
                {
                    _chain.Write(HeaderSize, _scratch.AsSpan(0, n));
                    c.TxCnt += (uint)n;
                    return Control(c, OpRw, 0, (uint)n);
                }
                c.Readable = false;
                if (n == 0)
                {
                    c.HostEof = true;
                    c.SendShutdown |= ShutdownSend;
                }
                else if (n != -Libc.EAGAIN)
                {
                    Close(c, reset: true);
                    return 0;
                }
                Arm(c);
            }
        }
        if (c.SendShutdown != 0)
        {
            uint flags = c.SendShutdown;
            c.SendShutdown = 0;
            return Control(c, OpShutdown, flags);
        }
        if (c.SendCreditUpdate) return Control(c, OpCreditUpdate, 0);
        return 0;
    }

    private uint Control(Connection c, ushort op, uint flags, uint len = 0)
    {
        c.LastSentFwdCnt = c.FwdCnt; // every header carries the credit, so no separate update is due
        c.SendCreditUpdate = false;
        return WriteHeader(c.HostPort, c.GuestPort, op, flags, len, BufferSize, c.FwdCnt) + len;
    }

    private uint WriteHeader(uint hostPort, uint guestPort, ushort op, uint flags, uint len, uint bufAlloc, uint fwdCnt)
    {
        Span<byte> h = stackalloc byte[HeaderSize];
        BinaryPrimitives.WriteUInt64LittleEndian(h[SrcCid..], HostCid);
        BinaryPrimitives.WriteUInt64LittleEndian(h[DstCid..], GuestCid);
        BinaryPrimitives.WriteUInt32LittleEndian(h[SrcPort..], hostPort);
        BinaryPrimitives.WriteUInt32LittleEndian(h[DstPort..], guestPort);
        BinaryPrimitives.WriteUInt32LittleEndian(h[Len..], len);
        BinaryPrimitives.WriteUInt16LittleEndian(h[Type..], TypeStream);
        BinaryPrimitives.WriteUInt16LittleEndian(h[Op..], op);
        BinaryPrimitives.WriteUInt32LittleEndian(h[Flags..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[BufAlloc..], bufAlloc);
        BinaryPrimitives.WriteUInt32LittleEndian(h[FwdCnt..], fwdCnt);
        _chain.Write(0, h);
        return HeaderSize;
    }

    private void Drop(string why)
    {
        if (Log.IsEnabled(LogLevel.Debug)) Log.Debug($"vsock {Id}: {why}");
    }

    public override string StateName => VsockState.Name;
    public override int StateVersion => VsockState.Version;

    protected override void SaveDeviceState(StateWriter writer) => new VsockState(Features, GuestCid, UdsPath).Write(writer);

    protected override void RestoreDeviceState(StateReader reader)
    {
        var state = VsockState.Read(reader);
        if (state.GuestCid != GuestCid) throw StateMismatch("guest CID", state.GuestCid, GuestCid);
        if (state.UdsPath != UdsPath) throw StateMismatch("uds-path", state.UdsPath, UdsPath);
        RestoreFeatures(state.Features);
        _transportResetPending = true;
    }

    public override void Dispose()
    {
        lock (Gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var c in _sockets) c.Socket.Dispose();
            _sockets.Clear();
            _connections.Clear();
            _listener.Dispose();
            Libc.Unlink(UdsPath);
        }
        base.Dispose();
    }
}
