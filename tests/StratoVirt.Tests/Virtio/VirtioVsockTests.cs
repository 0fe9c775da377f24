using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Vsock;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>virtio-vsock with its Unix-socket backend: the test plays the guest driver through TestDriver and the
/// host programs through real Unix sockets.</summary>
[Trait("Level", "Unit")]
public sealed class VirtioVsockTests : IDisposable
{
    private const ulong Cid = 3;
    private const uint GuestPort = 1025;

    private readonly TempDir _dir = new();
    private readonly string _path;
    private readonly VirtioVsock _vsock;
    private readonly TestDriver _d;
    private readonly List<Packet> _rx = [];
    private readonly List<Socket> _sockets = [];

    private sealed record Packet(ulong SrcCid, ulong DstCid, uint SrcPort, uint DstPort, uint Len, ushort Type,
        ushort Op, uint Flags, uint BufAlloc, uint FwdCnt, byte[] Data);

    public VirtioVsockTests()
    {
        _path = Path.Combine(_dir.Path, "v.sock");
        _vsock = new VirtioVsock(Cid, _path) { Id = "vsock0" };
        _d = new TestDriver(_vsock);
    }

    public void Dispose()
    {
        foreach (var s in _sockets) s.Dispose();
        _d.Dispose();
        _vsock.Dispose();
        _dir.Dispose();
    }

    // ---- guest side ----

    private static byte[] Header(ushort op, uint srcPort = GuestPort, uint dstPort = 5000, uint flags = 0,
        byte[]? data = null, uint bufAlloc = 64 * 1024, uint fwdCnt = 0, ulong srcCid = Cid, ulong dstCid = 2,
        ushort type = 1, uint? len = null)
    {
        data ??= [];
        var b = new byte[VirtioVsock.HeaderSize + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, srcCid);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), dstCid);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), srcPort);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(20), dstPort);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(24), len ?? (uint)data.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(28), type);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(30), op);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(32), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(36), bufAlloc);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(40), fwdCnt);
        data.CopyTo(b, VirtioVsock.HeaderSize);
        return b;
    }

    /// <summary>Sends one packet on the tx queue (header and payload in separate buffers, as Linux does).</summary>
    private void Send(byte[] packet)
    {
        var buffers = new List<TestBuffer> { TestBuffer.In(packet[..Math.Min(packet.Length, VirtioVsock.HeaderSize)]) };
        if (packet.Length > VirtioVsock.HeaderSize) buffers.Add(TestBuffer.In(packet[VirtioVsock.HeaderSize..]));
        _d.Add(1, buffers);
        _d.Notify(1);
        Assert.Single(_d.TakeUsed(1));
        Assert.False(_d.NeedsReset);
    }

    private void PostRx(int count, uint size = 4096 + VirtioVsock.HeaderSize)
    {
        for (int i = 0; i < count; i++) _d.Add(0, [TestBuffer.Out(size)]);
        _d.Notify(0);
    }

    private void Collect()
    {
        foreach (var c in _d.TakeUsed(0))
        {
            var b = c.WrittenBytes;
            Assert.True(b.Length >= VirtioVsock.HeaderSize);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(24));
            Assert.Equal(VirtioVsock.HeaderSize + len, (uint)b.Length);
            _rx.Add(new Packet(BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(8)),
                BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(16)), BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(20)),
                len, BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(28)), BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(30)),
                BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(32)), BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(36)),
                BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(40)), b[VirtioVsock.HeaderSize..]));
        }
    }

    /// <summary>Pumps the device until the guest received a packet with <paramref name="op"/>; returns it.</summary>
    private Packet Expect(ushort op, int timeoutMs = 3000)
    {
        Packet? found = null;
        bool ok = _d.PumpUntil(() =>
        {
            Collect();
            found = _rx.FirstOrDefault(p => p.Op == op);
            return found is not null;
        }, timeoutMs);
        Assert.True(ok, $"no packet with op {op}; got ops [{string.Join(",", _rx.Select(p => p.Op))}]");
        _rx.Remove(found!);
        Assert.Equal(2UL, found!.SrcCid);
        Assert.Equal(Cid, found.DstCid);
        Assert.Equal(VirtioVsock.TypeStream, found.Type);
        return found;
    }

    /// <summary>Pumps a little and returns what the guest received meanwhile.</summary>
    private List<Packet> Drain(int ms = 100)
    {
        _d.PumpUntil(() => false, ms);
        Collect();
        var all = _rx.ToList();
        _rx.Clear();
        return all;
    }

    /// <summary>Asserts that the device's loop has nothing to do: it sleeps for the whole wait instead of
    /// spinning on a socket it cannot serve.</summary>
    private void AssertLoopIdle()
    {
        _d.Pump();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        _d.Loop.RunOnce(300);
        Assert.True(clock.ElapsedMilliseconds >= 250, $"the loop woke after {clock.ElapsedMilliseconds} ms");
    }

    /// <summary>Pumps until the RW payloads the guest received add up to <paramref name="length"/> bytes.</summary>
    private byte[] ReceiveData(int length)
    {
        var data = new List<byte>();
        Assert.True(_d.PumpUntil(() =>
        {
            Collect();
            foreach (var p in _rx.Where(p => p.Op == VirtioVsock.OpRw)) data.AddRange(p.Data);
            _rx.RemoveAll(p => p.Op == VirtioVsock.OpRw);
            return data.Count >= length;
        }), $"guest received {data.Count} of {length} bytes");
        return [.. data];
    }

    // ---- host side ----

    /// <summary>A host client connected to the device's socket that has sent nothing yet.</summary>
    private Socket HostClient()
    {
        var s = NewSocket();
        s.Connect(new UnixDomainSocketEndPoint(_path));
        return s;
    }

    private Socket NewSocket()
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _sockets.Add(s);
        return s;
    }

    private Socket HostConnect(uint port)
    {
        var s = HostClient();
        s.Send(Encoding.ASCII.GetBytes($"CONNECT {port}\n"));
        return s;
    }

    private Socket HostListen(uint port)
    {
        var s = NewSocket();
        s.Bind(new UnixDomainSocketEndPoint($"{_path}_{port}"));
        s.Listen(4);
        return s;
    }

    private Socket Accept(Socket listener)
    {
        Assert.True(listener.Poll(3_000_000, SelectMode.SelectRead), "nobody connected");
        var s = listener.Accept();
        _sockets.Add(s);
        return s;
    }

    /// <summary>Reads exactly <paramref name="length"/> bytes from a host socket while pumping the device.</summary>
    private byte[] HostRead(Socket s, int length)
    {
        var data = new byte[length];
        int got = 0;
        Assert.True(_d.PumpUntil(() =>
        {
            while (got < length && s.Available > 0) got += s.Receive(data, got, length - got, SocketFlags.None);
            return got == length;
        }), $"host read {got} of {length} bytes");
        return data;
    }

    /// <summary>Whether the host socket reaches end of file (the device closed or half-closed it); data before
    /// the end is discarded.</summary>
    private bool HostSeesEof(Socket s)
    {
        var buffer = new byte[64 * 1024];
        return _d.PumpUntil(() =>
        {
            while (s.Poll(0, SelectMode.SelectRead))
                if (s.Receive(buffer) == 0) return true;
            return false;
        });
    }

    /// <summary>A host-initiated connection to guest port <paramref name="port"/>, accepted by the guest.</summary>
    private (Socket Host, uint HostPort) OpenFromHost(uint port = 5000, uint guestBufAlloc = 64 * 1024)
    {
        var host = HostConnect(port);
        var request = Expect(VirtioVsock.OpRequest);
        Assert.Equal(port, request.DstPort);
        Send(Header(VirtioVsock.OpResponse, srcPort: port, dstPort: request.SrcPort, bufAlloc: guestBufAlloc));
        string ok = $"OK {request.SrcPort}\n";
        Assert.Equal(ok, Encoding.ASCII.GetString(HostRead(host, ok.Length)));
        return (host, request.SrcPort);
    }

    /// <summary>A guest-initiated connection from <see cref="GuestPort"/> to host port <paramref name="port"/>.</summary>
    private Socket OpenFromGuest(uint port = 6000, uint guestBufAlloc = 64 * 1024)
    {
        var listener = HostListen(port);
        Send(Header(VirtioVsock.OpRequest, dstPort: port, bufAlloc: guestBufAlloc));
        var response = Expect(VirtioVsock.OpResponse);
        Assert.Equal(port, response.SrcPort);
        Assert.Equal(GuestPort, response.DstPort);
        Assert.Equal(VirtioVsock.BufferSize, response.BufAlloc);
        return Accept(listener);
    }

    // ---- tests ----

    [Fact]
    public void IdentifiesAsVsockAndReportsTheGuestCid()
    {
        Assert.Equal(VirtioDeviceId.Vsock, _d.ReadReg(VirtioMmioRegister.DeviceId));
        Assert.Equal(3, _vsock.QueueCount);
        Assert.Equal(Cid, BinaryPrimitives.ReadUInt64LittleEndian(_d.ReadConfig(0, 8)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(_d.ReadConfig(8, 4)));
        Assert.True(File.Exists(_path));
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(2UL)]
    [InlineData(0xFFFFFFFFUL)]
    [InlineData(0x100000000UL)]
    public void RejectsReservedOrOversizedCids(ulong cid)
    {
        var e = Assert.Throws<ArgumentException>(() => new VirtioVsock(cid, Path.Combine(_dir.Path, "x.sock")));
        Assert.Contains("guest-cid", e.Message);
    }

    [Fact]
    public void RejectsAnExistingOrOverlongSocketPath()
    {
        var e = Assert.Throws<ArgumentException>(() => new VirtioVsock(4, _path));
        Assert.Contains("Address already in use", e.Message);
        e = Assert.Throws<ArgumentException>(() => new VirtioVsock(4, "/tmp/" + new string('a', 100)));
        Assert.Contains("at most", e.Message);
    }

    [Fact]
    public void HostConnectsToAGuestPortAndDataFlowsBothWays()
    {
        _d.Initialize();
        PostRx(8);
        var (host, hostPort) = OpenFromHost(5000);
        Assert.True(hostPort >= 1u << 30);
        Assert.Equal(1, _vsock.ConnectionCount);

        host.Send("hello guest"u8.ToArray());
        Assert.Equal("hello guest", Encoding.ASCII.GetString(ReceiveData(11)));

        Send(Header(VirtioVsock.OpRw, srcPort: 5000, dstPort: hostPort, data: "hello host"u8.ToArray()));
        Assert.Equal("hello host", Encoding.ASCII.GetString(HostRead(host, 10)));
        Assert.True(_d.Irq.Count > 0);
    }

    [Fact]
    public void DataTheHostSendsRightAfterConnectIsNotLost()
    {
        _d.Initialize();
        PostRx(8);
        var host = HostClient();
        host.Send("CONNECT 77\nearly"u8.ToArray());
        var request = Expect(VirtioVsock.OpRequest);
        Assert.Equal(77u, request.DstPort);
        Send(Header(VirtioVsock.OpResponse, srcPort: 77, dstPort: request.SrcPort));
        Assert.Equal("early", Encoding.ASCII.GetString(ReceiveData(5)));
    }

    [Fact]
    public void AGuestThatRefusesAHostConnectionClosesTheHostSocket()
    {
        _d.Initialize();
        PostRx(4);
        var host = HostConnect(5001);
        var request = Expect(VirtioVsock.OpRequest);
        Send(Header(VirtioVsock.OpRst, srcPort: 5001, dstPort: request.SrcPort));
        Assert.True(HostSeesEof(host));
        Assert.Equal(0, _vsock.ConnectionCount);
    }

    [Theory]
    [InlineData("CONNECT\n")]
    [InlineData("CONNECT x\n")]
    [InlineData("HELLO 5\n")]
    [InlineData("CONNECT 99999999999\n")]
    public void ABadConnectLineClosesTheHostClient(string line)
    {
        _d.Initialize();
        PostRx(4);
        var host = HostClient();
        host.Send(Encoding.ASCII.GetBytes(line));
        Assert.True(HostSeesEof(host));
        Assert.Empty(Drain());
    }

    [Fact]
    public void GuestConnectsToAHostListenerAndDataFlowsBothWays()
    {
        _d.Initialize();
        PostRx(8);
        var host = OpenFromGuest(6000);
        Send(Header(VirtioVsock.OpRw, dstPort: 6000, data: "ping"u8.ToArray()));
        Assert.Equal("ping", Encoding.ASCII.GetString(HostRead(host, 4)));
        host.Send("pong"u8.ToArray());
        Assert.Equal("pong", Encoding.ASCII.GetString(ReceiveData(4)));
    }

    [Fact]
    public void AGuestConnectionToAPortNobodyListensOnIsReset()
    {
        _d.Initialize();
        PostRx(4);
        Send(Header(VirtioVsock.OpRequest, dstPort: 7000));
        var rst = Expect(VirtioVsock.OpRst);
        Assert.Equal(7000u, rst.SrcPort);
        Assert.Equal(GuestPort, rst.DstPort);
        Assert.Equal(0, _vsock.ConnectionCount);
    }

    [Fact]
    public void MalformedPacketsAreDroppedOrResetWithoutHarm()
    {
        _d.Initialize();
        PostRx(16);
        var host = OpenFromGuest(6000);

        Send(Header(VirtioVsock.OpRw)[..20]); // shorter than a header
        Send(Header(VirtioVsock.OpRequest, dstPort: 6000, srcPort: 9, srcCid: 4)); // not the guest's cid
        Send(Header(VirtioVsock.OpRequest, dstPort: 6000, srcPort: 9, dstCid: 5)); // not to the host
        Assert.Empty(Drain());

        Send(Header(VirtioVsock.OpRw, dstPort: 4444, data: [1, 2])); // no such connection
        Assert.Equal(4444u, Expect(VirtioVsock.OpRst).SrcPort);
        Send(Header(VirtioVsock.OpRequest, dstPort: 4444, type: 2)); // SEQPACKET is not offered
        Assert.Equal(4444u, Expect(VirtioVsock.OpRst).SrcPort);
        Send(Header(99, dstPort: 4444)); // unknown operation
        Assert.Equal(4444u, Expect(VirtioVsock.OpRst).SrcPort);
        Send(Header(VirtioVsock.OpRst, dstPort: 4444)); // a reset is never answered
        Assert.Empty(Drain());
        Assert.Equal(1, _vsock.ConnectionCount);

        // A length beyond the buffers on a live connection resets it.
        Send(Header(VirtioVsock.OpRw, dstPort: 6000, data: [1, 2, 3], len: 4000));
        Assert.Equal(6000u, Expect(VirtioVsock.OpRst).SrcPort);
        Assert.True(HostSeesEof(host));
        Assert.Equal(0, _vsock.ConnectionCount);

        // The device still works.
        Assert.False(_d.NeedsReset);
        var again = OpenFromGuest(6001);
        Send(Header(VirtioVsock.OpRw, dstPort: 6001, data: "ok"u8.ToArray()));
        Assert.Equal("ok", Encoding.ASCII.GetString(HostRead(again, 2)));
    }

    [Fact]
    public void AnUnknownOperationOnALiveConnectionResetsIt()
    {
        _d.Initialize();
        PostRx(8);
        var host = OpenFromGuest(6000);
        Send(Header(42, dstPort: 6000));
        Assert.Equal(6000u, Expect(VirtioVsock.OpRst).SrcPort);
        Assert.True(HostSeesEof(host));
    }

    [Fact]
    public void AReceiveBufferTooSmallForAHeaderFailsTheDevice()
    {
        _d.Initialize();
        PostRx(1, size: 16);
        _d.Add(1, [TestBuffer.In(Header(VirtioVsock.OpRequest, dstPort: 7000))]);
        _d.Notify(1);
        Assert.True(_d.NeedsReset);
    }

    [Fact]
    public void SendingStopsWhenTheGuestsCreditIsExhaustedAndResumesOnCreditUpdate()
    {
        _d.Initialize();
        PostRx(16);
        var host = OpenFromGuest(6000, guestBufAlloc: 10);
        host.Send(Encoding.ASCII.GetBytes("0123456789abcdefghijKLMNO"));

        Assert.Equal("0123456789", Encoding.ASCII.GetString(ReceiveData(10)));
        Assert.DoesNotContain(Drain(200), p => p.Op == VirtioVsock.OpRw); // no credit left
        AssertLoopIdle();

        Send(Header(VirtioVsock.OpCreditUpdate, dstPort: 6000, bufAlloc: 10, fwdCnt: 10));
        Assert.Equal("abcdefghij", Encoding.ASCII.GetString(ReceiveData(10)));
        Assert.DoesNotContain(Drain(200), p => p.Op == VirtioVsock.OpRw);

        Send(Header(VirtioVsock.OpCreditUpdate, dstPort: 6000, bufAlloc: 10, fwdCnt: 20));
        Assert.Equal("KLMNO", Encoding.ASCII.GetString(ReceiveData(5)));
    }

    [Fact]
    public void CreditRequestIsAnsweredWithTheDevicesCredit()
    {
        _d.Initialize();
        PostRx(8);
        var host = OpenFromGuest(6000);
        Send(Header(VirtioVsock.OpRw, dstPort: 6000, data: new byte[100]));
        HostRead(host, 100);
        Send(Header(VirtioVsock.OpCreditRequest, dstPort: 6000));
        var update = Expect(VirtioVsock.OpCreditUpdate);
        Assert.Equal(VirtioVsock.BufferSize, update.BufAlloc);
        Assert.Equal(100u, update.FwdCnt);
    }

    [Fact]
    public void ABulkGuestTransferRespectingCreditArrivesWholeAndInOrder()
    {
        _d.Initialize(queueSize: 64);
        PostRx(32);
        var host = OpenFromGuest(6000);
        const int Total = 1 << 20;
        var payload = new byte[Total];
        new Random(7).NextBytes(payload);
        var received = new MemoryStream();
        uint peerBufAlloc = VirtioVsock.BufferSize, peerFwd = 0;
        int sent = 0;
        var buffer = new byte[64 * 1024];
        var deadline = Environment.TickCount64 + 20_000;
        while (received.Length < Total)
        {
            Assert.True(Environment.TickCount64 < deadline, $"stalled at {sent} sent, {received.Length} received");
            uint credit = peerBufAlloc - (uint)(sent - peerFwd);
            Assert.True(credit <= peerBufAlloc);
            if (credit > 0 && sent < Total)
            {
                int n = (int)Math.Min(Math.Min(credit, 32 * 1024u), (uint)(Total - sent));
                Send(Header(VirtioVsock.OpRw, dstPort: 6000, data: payload[sent..(sent + n)]));
                sent += n;
            }
            // The host reads slowly: at most 16 KiB per round, so the device has to queue and flush.
            if (host.Available > 0) received.Write(buffer, 0, host.Receive(buffer, 0, 16 * 1024, SocketFlags.None));
            _d.Pump(2);
            Collect();
            foreach (var p in _rx) { peerBufAlloc = p.BufAlloc; peerFwd = Math.Max(peerFwd, p.FwdCnt); }
            int updates = _rx.Count(p => p.Op == VirtioVsock.OpCreditUpdate);
            _rx.Clear();
            if (updates > 0) PostRx(updates);
        }
        Assert.Equal(payload, received.ToArray());
        Assert.Equal(1, _vsock.ConnectionCount);
    }

    [Fact]
    public void AGuestThatIgnoresCreditIsReset()
    {
        _d.Initialize(queueSize: 64);
        PostRx(60);
        var host = OpenFromGuest(6000); // the host never reads
        var chunk = new byte[VirtioVsock.MaxPayload];
        Packet? rst = null;
        for (int i = 0; i < 40 && rst is null; i++)
        {
            Send(Header(VirtioVsock.OpRw, dstPort: 6000, data: chunk));
            Collect();
            rst = _rx.FirstOrDefault(p => p.Op == VirtioVsock.OpRst);
        }
        Assert.NotNull(rst);
        Assert.Equal(6000u, rst.SrcPort);
        Assert.Equal(0, _vsock.ConnectionCount);
        Assert.True(HostSeesEof(host));
    }

    [Fact]
    public void HostDataWaitsForReceiveBuffersWithoutLoss()
    {
        _d.Initialize();
        PostRx(1); // taken by the REQUEST: afterwards the guest has no receive buffers
        var host = HostConnect(5000);
        var request = Expect(VirtioVsock.OpRequest);
        Send(Header(VirtioVsock.OpResponse, srcPort: 5000, dstPort: request.SrcPort));
        HostRead(host, $"OK {request.SrcPort}\n".Length);

        var expected = new byte[3 * 4096 + 100];
        new Random(3).NextBytes(expected);
        host.Send(expected);
        Assert.Empty(Drain(200));
        AssertLoopIdle();
        var received = new List<byte>();
        for (int i = 0; i < 4; i++)
        {
            PostRx(1);
            var p = Assert.Single(Drain(100)); // exactly one packet per buffer
            Assert.Equal(VirtioVsock.OpRw, p.Op);
            received.AddRange(p.Data);
        }
        Assert.Equal(expected, received.ToArray());
    }

    [Fact]
    public void AHostCloseIsAShutdownAndTheGuestsCloseIsAnsweredWithReset()
    {
        _d.Initialize();
        PostRx(8);
        var (host, hostPort) = OpenFromHost(5000);
        host.Send("bye"u8.ToArray());
        host.Shutdown(SocketShutdown.Send);
        Assert.Equal("bye", Encoding.ASCII.GetString(ReceiveData(3)));
        var shutdown = Expect(VirtioVsock.OpShutdown);
        Assert.Equal(VirtioVsock.ShutdownSend, shutdown.Flags & VirtioVsock.ShutdownSend);
        Assert.Equal(hostPort, shutdown.SrcPort);

        // The host half-closed: it still reads what the guest sends.
        Send(Header(VirtioVsock.OpRw, srcPort: 5000, dstPort: hostPort, data: "last"u8.ToArray()));
        Assert.Equal("last", Encoding.ASCII.GetString(HostRead(host, 4)));

        Send(Header(VirtioVsock.OpShutdown, srcPort: 5000, dstPort: hostPort,
            flags: VirtioVsock.ShutdownRcv | VirtioVsock.ShutdownSend));
        Assert.Equal(hostPort, Expect(VirtioVsock.OpRst).SrcPort);
        Assert.True(HostSeesEof(host));
        Assert.Equal(0, _vsock.ConnectionCount);
    }

    [Fact]
    public void AGuestShutdownOfSendingHalfClosesTheHostSocket()
    {
        _d.Initialize();
        PostRx(8);
        var host = OpenFromGuest(6000);
        Send(Header(VirtioVsock.OpRw, dstPort: 6000, data: "end"u8.ToArray()));
        Send(Header(VirtioVsock.OpShutdown, dstPort: 6000, flags: VirtioVsock.ShutdownSend));
        Assert.Equal("end", Encoding.ASCII.GetString(HostRead(host, 3)));
        Assert.True(HostSeesEof(host));

        host.Send("reply"u8.ToArray()); // the other direction still works
        Assert.Equal("reply", Encoding.ASCII.GetString(ReceiveData(5)));

        Send(Header(VirtioVsock.OpRst, dstPort: 6000));
        Assert.DoesNotContain(Drain(), p => p.Op == VirtioVsock.OpRst);
        Assert.Equal(0, _vsock.ConnectionCount);
    }

    [Fact]
    public void ADeviceResetClosesEveryConnection()
    {
        _d.Initialize();
        PostRx(8);
        var fromGuest = OpenFromGuest(6000);
        var (fromHost, _) = OpenFromHost(5000);
        Assert.Equal(2, _vsock.ConnectionCount);
        _d.WriteReg(VirtioMmioRegister.Status, 0);
        Assert.Equal(0, _vsock.ConnectionCount);
        Assert.True(HostSeesEof(fromGuest));
        Assert.True(HostSeesEof(fromHost));

        // After the driver binds again, the device accepts connections as before.
        _d.Initialize();
        PostRx(8);
        var (again, hostPort) = OpenFromHost(5000);
        again.Send("x"u8.ToArray());
        Assert.Equal("x", Encoding.ASCII.GetString(ReceiveData(1)));
        Assert.True(hostPort > 0);
    }
}
