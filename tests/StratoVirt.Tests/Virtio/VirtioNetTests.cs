using System.Buffers.Binary;
using System.Runtime.InteropServices;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

[Trait("Level", "Unit")]
public sealed class VirtioNetTests : IDisposable
{
    private const int Rx = VirtioNet.RxQueue, Tx = VirtioNet.TxQueue, Hdr = 12;
    private static readonly byte[] TestMac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    private const ulong Basic = VirtioFeature.Version1 | VirtioNet.FeatureMac | VirtioNet.FeatureStatus;

    private readonly PacketPair _pair = new();
    private readonly VirtioNet _net;
    private readonly TestDriver _d;
    private readonly List<TestCompletion> _rxDone = [];

    public VirtioNetTests()
    {
        _net = new VirtioNet(_pair, TestMac) { Id = "net0" };
        _d = new TestDriver(_net);
    }

    public void Dispose() => _d.Dispose();

    /// <summary>A frame as the tap carries it: a vnet header (with a recognisable flags byte) and a patterned payload.</summary>
    private static byte[] Frame(int payload, byte seed)
    {
        var f = new byte[Hdr + payload];
        f[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM, passed through untouched
        f[4] = seed;
        for (int i = 0; i < payload; i++) f[Hdr + i] = (byte)(seed + i * 7);
        return f;
    }

    private static byte[] WithNumBuffers(byte[] frame, ushort n)
    {
        var f = (byte[])frame.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(10), n);
        return f;
    }

    private bool RxCompleted(int count)
    {
        _rxDone.AddRange(_d.TakeUsed(Rx));
        return _rxDone.Count >= count;
    }

    [Fact]
    public void ConfigSpaceHoldsTheMacAndLinkUp()
    {
        Assert.Equal(VirtioDeviceId.Net, _d.ReadReg(VirtioMmioRegister.DeviceId));
        ulong f = _d.DeviceFeatures();
        foreach (ulong bit in new[] { VirtioNet.FeatureMac, VirtioNet.FeatureStatus, VirtioNet.FeatureMrgRxbuf,
                     VirtioNet.FeatureCsum, VirtioNet.FeatureGuestCsum, VirtioNet.FeatureHostTso4,
                     VirtioNet.FeatureGuestTso6, VirtioFeature.Version1 })
            Assert.NotEqual(0UL, f & bit);
        Assert.Equal(0UL, f & (1UL << 17)); // no control queue
        Assert.Equal(TestMac, _d.ReadConfig(0, 6));
        Assert.Equal(new byte[] { 1, 0 }, _d.ReadConfig(6, 2));
        Assert.Equal(new byte[] { 0x56, 1, 0, 0 }, _d.ReadConfig(5, 4)); // an unaligned read past the end
    }

    [Fact]
    public void MacAddressesAreParsedCheckedAndGenerated()
    {
        Assert.Equal(TestMac, VirtioNet.ParseMac("52:54:00:12:34:56"));
        Assert.Equal("52:54:00:12:34:56", VirtioNet.FormatMac(TestMac));
        Assert.Contains("not six hex bytes", Assert.Throws<ArgumentException>(() => VirtioNet.ParseMac("52:54:00:12:34")).Message);
        Assert.Contains("not six hex bytes", Assert.Throws<ArgumentException>(() => VirtioNet.ParseMac("52:54:00:12:34:zz")).Message);
        Assert.Contains("multicast", Assert.Throws<ArgumentException>(() => VirtioNet.ParseMac("01:00:5e:00:00:01")).Message);
        var a = VirtioNet.RandomMac();
        Assert.Equal(2, a[0] & 3); // unicast, locally administered
        using var other = new VirtioNet(new PacketPair());
        Assert.Equal(2, other.Mac[0] & 3);
        Assert.Throws<ArgumentException>(() => new VirtioNet(new PacketPair(), [1, 2, 3]));
    }

    [Fact]
    public void TheTapIsToldTheOffloadsTheGuestAccepted()
    {
        _d.Initialize();
        Assert.Equal(Libc.TUN_F_CSUM | Libc.TUN_F_TSO4 | Libc.TUN_F_TSO6 | Libc.TUN_F_TSO_ECN, _pair.Offload);
        _d.WriteReg(VirtioMmioRegister.Status, 0);
        _d.Initialize(Basic);
        Assert.Equal(0u, _pair.Offload);
        Assert.Equal(Libc.TUN_F_CSUM,
            VirtioNet.TunOffloads(VirtioNet.FeatureGuestCsum | VirtioNet.FeatureGuestEcn));
        Assert.Equal(0u, VirtioNet.TunOffloads(VirtioNet.FeatureGuestTso4)); // TSO without checksum is not offloaded
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TransmittedFramesReachTheBackendWhole(bool indirect)
    {
        _d.Initialize();
        var one = Frame(60, 1);
        var c = _d.Request(Tx, TestBuffer.In(one));
        Assert.Equal(0u, c.Written);
        Assert.Equal(one, _pair.Receive());

        var two = Frame(3000, 2);
        ushort head = _d.Add(Tx, [TestBuffer.In(two[..Hdr]), TestBuffer.In(two[Hdr..1000]), TestBuffer.In(two[1000..])], indirect);
        _d.Notify(Tx);
        Assert.Equal(head, Assert.Single(_d.TakeUsed(Tx)).Head);
        Assert.Equal(two, _pair.Receive());
        Assert.Null(_pair.Receive());
        Assert.True(_d.Irq.Count > 0);
    }

    [Fact]
    public void MalformedTransmitChainsAreDroppedAndTheDeviceGoesOn()
    {
        _d.Initialize();
        _d.Request(Tx, TestBuffer.In(new byte[Hdr - 1]));
        var big = Frame(VirtioNet.MaxFrame + 1, 3);
        var c = _d.Request(Tx, TestBuffer.In(big[..40000]), TestBuffer.In(big[40000..]));
        Assert.Equal(0u, c.Written);
        Assert.Null(_pair.Receive());
        Assert.Equal(2, _net.TxDropped);

        var largest = Frame(VirtioNet.MaxFrame, 4); // exactly the limit still goes
        _d.Request(Tx, TestBuffer.In(largest[..40000]), TestBuffer.In(largest[40000..]));
        Assert.Equal(largest, _pair.Receive());
        Assert.False(_d.NeedsReset);
    }

    [Fact]
    public void ABackendWithoutRoomDelaysTransmitUntilItIsWritable()
    {
        _d.Initialize();
        // 16 x 40 KB is more than a unix socket's send buffer (~208 KiB) holds: the device must meet EAGAIN.
        var frames = Enumerable.Range(0, 16).Select(i => Frame(40000, (byte)i)).ToArray();
        foreach (var f in frames) _d.Add(Tx, [TestBuffer.In(f)]);
        _d.Notify(Tx);
        int usedFirst = _d.TakeUsed(Tx).Count;
        Assert.InRange(usedFirst, 1, 15);
        Assert.Equal(Libc.EPOLLOUT, _net.Interest & Libc.EPOLLOUT);

        var received = new List<byte[]>();
        int used = usedFirst;
        Assert.True(_d.PumpUntil(() =>
        {
            for (byte[]? r; (r = _pair.Receive()) is not null;) received.Add(r);
            used += _d.TakeUsed(Tx).Count;
            return received.Count == 16;
        }));
        Assert.Equal(frames, received);
        Assert.Equal(16, used);
        Assert.Equal(0, _net.TxDropped);
        Assert.Equal(0u, _net.Interest & Libc.EPOLLOUT);
    }

    [Fact]
    public void AReceivedFrameFillsOneBufferWithNumBuffersOne()
    {
        _d.Initialize();
        ushort head = _d.Add(Rx, [TestBuffer.Out(2048)]);
        _d.Notify(Rx);
        var f = Frame(100, 5);
        _pair.Send(f);
        Assert.True(_d.PumpUntil(() => RxCompleted(1)));
        var c = Assert.Single(_rxDone);
        Assert.Equal(head, c.Head);
        Assert.Equal((uint)f.Length, c.Written);
        Assert.Equal(WithNumBuffers(f, 1), c.WrittenBytes);
        Assert.True(_d.Irq.Count > 0);
    }

    [Fact]
    public void AFrameLargerThanOneMergeableBufferSpansSeveral()
    {
        _d.Initialize();
        var heads = Enumerable.Range(0, 4).Select(_ => _d.Add(Rx, [TestBuffer.Out(1000)])).ToArray();
        _d.Notify(Rx);
        var f = Frame(2500, 6);
        _pair.Send(f);
        Assert.True(_d.PumpUntil(() => RxCompleted(3)));
        Assert.Equal(heads[..3], _rxDone.Select(c => c.Head));
        Assert.Equal(new uint[] { 1000, 1000, 512 }, _rxDone.Select(c => c.Written));
        Assert.Equal(WithNumBuffers(f, 3), _rxDone.SelectMany(c => c.WrittenBytes));

        _pair.Send(Frame(10, 7)); // the fourth buffer is still there for the next frame
        Assert.True(_d.PumpUntil(() => RxCompleted(4)));
        Assert.Equal(heads[3], _rxDone[3].Head);
    }

    [Fact]
    public void AMergedFrameWaitsForTheBuffersItStillNeeds()
    {
        _d.Initialize();
        _d.Add(Rx, [TestBuffer.Out(1000)]);
        _d.Notify(Rx);
        var f = Frame(2500, 8);
        _pair.Send(f);
        _d.PumpUntil(() => false, 100);
        Assert.Empty(_d.TakeUsed(Rx));
        Assert.Equal(0u, _net.Interest & Libc.EPOLLIN); // not reading more while it cannot deliver

        _d.Add(Rx, [TestBuffer.Out(1000)]);
        _d.Add(Rx, [TestBuffer.Out(1000)]);
        _d.Notify(Rx);
        Assert.True(RxCompleted(3));
        Assert.Equal(WithNumBuffers(f, 3), _rxDone.SelectMany(c => c.WrittenBytes));
        Assert.Equal(0u, _net.Interest & Libc.EPOLLIN); // the ring is empty again
        _d.Add(Rx, [TestBuffer.Out(1000)]);
        _d.Notify(Rx);
        Assert.Equal(Libc.EPOLLIN, _net.Interest & Libc.EPOLLIN);
    }

    [Fact]
    public void AFrameTheWholeRingCannotHoldIsDropped()
    {
        _d.Initialize(queueSize: 4);
        for (int i = 0; i < 4; i++) _d.Add(Rx, [TestBuffer.Out(100)]);
        _d.Notify(Rx);
        _pair.Send(Frame(1000, 9));
        var small = Frame(20, 10);
        _pair.Send(small);
        Assert.True(_d.PumpUntil(() => RxCompleted(1)));
        Assert.Equal(WithNumBuffers(small, 1), Assert.Single(_rxDone).WrittenBytes);
        Assert.Equal(1, _net.RxDropped);
        Assert.False(_d.NeedsReset);
    }

    [Fact]
    public void WithoutMergeableBuffersEachFrameTakesOneChain()
    {
        _d.Initialize(Basic);
        ushort head = _d.Add(Rx, [TestBuffer.Out(Hdr), TestBuffer.Out(1500)]);
        _d.Notify(Rx);
        _pair.Send(Frame(3000, 11)); // does not fit: dropped, the chain is kept
        var f = Frame(1400, 12);
        _pair.Send(f);
        Assert.True(_d.PumpUntil(() => RxCompleted(1)));
        var c = Assert.Single(_rxDone);
        Assert.Equal(head, c.Head);
        Assert.Equal(WithNumBuffers(f, 1), c.WrittenBytes);
        Assert.Equal(1, _net.RxDropped);
    }

    [Fact]
    public void ReceiveStallsWithoutBuffersAndResumesWhenTheGuestAddsSome()
    {
        _d.Initialize();
        var frames = Enumerable.Range(0, 3).Select(i => Frame(200, (byte)(20 + i))).ToArray();
        foreach (var f in frames) _pair.Send(f);
        _d.PumpUntil(() => false, 100);
        Assert.Equal(0u, _net.Interest & Libc.EPOLLIN); // no busy loop on a readable tap

        for (int i = 0; i < 3; i++) _d.Add(Rx, [TestBuffer.Out(512)]);
        _d.Notify(Rx);
        Assert.True(_d.PumpUntil(() => RxCompleted(3)));
        Assert.Equal(frames.Select(f => WithNumBuffers(f, 1)), _rxDone.Select(c => c.WrittenBytes));
        Assert.Equal(0, _net.RxDropped);
    }

    [Fact]
    public void ABufferTooSmallForTheHeaderIsReturnedEmpty()
    {
        _d.Initialize();
        ushort tiny = _d.Add(Rx, [TestBuffer.Out(4)]);
        ushort good = _d.Add(Rx, [TestBuffer.Out(512)]);
        _d.Notify(Rx);
        var f = Frame(50, 30);
        _pair.Send(f);
        Assert.True(_d.PumpUntil(() => RxCompleted(2)));
        Assert.Equal((tiny, 0u), (_rxDone[0].Head, _rxDone[0].Written));
        Assert.Equal(good, _rxDone[1].Head);
        Assert.Equal(WithNumBuffers(f, 1), _rxDone[1].WrittenBytes);
    }

    [Fact]
    public void ResetStopsAllIo()
    {
        _d.Initialize();
        _d.Add(Rx, [TestBuffer.Out(512)]);
        _d.Notify(Rx);
        _d.WriteReg(VirtioMmioRegister.Status, 0);
        Assert.False(_net.Active);
        var f = Frame(64, 40);
        _pair.Send(f);
        _d.PumpUntil(() => false, 100);
        Assert.Equal(f, _pair.ReceiveOnDeviceEnd()); // the device did not read it

        _d.Initialize(); // and a new driver gets frames again
        _d.Add(Rx, [TestBuffer.Out(512)]);
        _d.Notify(Rx);
        _pair.Send(f);
        Assert.True(_d.PumpUntil(() => RxCompleted(1)));
        Assert.Equal(WithNumBuffers(f, 1), _rxDone[0].WrittenBytes);
    }

    [Fact]
    public void ABackendThatHangsUpStopsTheDeviceQuietly()
    {
        _d.Initialize();
        _d.Add(Rx, [TestBuffer.Out(512)]);
        _d.Notify(Rx);
        _pair.ClosePeer();
        _d.PumpUntil(() => false, 100);
        Assert.False(_d.NeedsReset);
        var c = _d.Request(Tx, TestBuffer.In(Frame(10, 1))); // dropped, not left to time out in the guest
        Assert.Equal(0u, c.Written);
        Assert.Equal(1, _net.TxDropped);
    }
}

/// <summary>The tap backend against the real kernel, in a network namespace of its own.</summary>
[Trait("Level", "Unit")]
public sealed unsafe class TapTests
{
    [Fact]
    public void BadNamesAndNonTapFdsGetClearErrors()
    {
        Assert.Contains("longer than 15 bytes", Assert.Throws<TapException>(() => Tap.Open("a-name-that-is-too-long")).Message);
        Assert.Contains("empty", Assert.Throws<TapException>(() => Tap.Open("")).Message);
        using var pair = new PacketPair();
        var e = Assert.Throws<TapException>(() => Tap.Adopt(pair.Fd));
        Assert.Contains($"tap fd {pair.Fd}: not an attached tap device", e.Message);
        Assert.Contains("not an open file descriptor", Assert.Throws<TapException>(() => Tap.Adopt(9999)).Message);
    }

    /// <summary>unshare(CLONE_NEWNET) affects only the calling thread, so a thread of its own can make taps
    /// without touching the host's interfaces.</summary>
    private static void InNewNetworkNamespace(Action body)
    {
        Exception? failure = null;
        var t = new Thread(() =>
        {
            try
            {
                SysException.Check(Libc.Unshare(Libc.CLONE_NEWNET), "unshare(CLONE_NEWNET)");
                body();
            }
            catch (Exception e) { failure = e; }
        });
        t.Start();
        t.Join();
        if (failure is not null) throw new Xunit.Sdk.XunitException($"in a new network namespace: {failure}");
    }

    private static int OpenRawTun(string name, short flags)
    {
        int fd = SysException.Check(Libc.Open("/dev/net/tun", Libc.O_RDWR | Libc.O_CLOEXEC, 0), "open /dev/net/tun");
        var req = new IfReq { Flags = flags };
        for (int i = 0; i < name.Length; i++) req.Name[i] = (byte)name[i];
        SysException.Check(Libc.Ioctl(fd, Libc.TUNSETIFF, &req), "TUNSETIFF");
        return fd;
    }

    [Fact]
    public void ARealTapOpensAdoptsAndCarriesFrames()
    {
        InNewNetworkNamespace(() =>
        {
            using (var tap = Tap.Open("svtest0"))
            {
                Assert.Equal("svtest0", tap.Name);
                Assert.Equal(Tap.VnetHeaderSize, tap.HeaderSize);
                tap.SetOffload(Libc.TUN_F_CSUM | Libc.TUN_F_TSO4);

                // Through the device: the interface is down, so the kernel refuses the frame (EIO) and the device
                // drops it rather than stalling.
                var net = new VirtioNet(tap, VirtioNet.ParseMac("52:54:00:00:00:01")) { Id = "net0" };
                using var d = new TestDriver(net);
                d.Initialize();
                d.Add(0, [TestBuffer.Out(2048)]);
                d.Notify(0);
                var frame = new byte[12 + 60];
                frame[12] = 0xff; // broadcast destination
                Assert.Equal(0u, d.Request(1, TestBuffer.In(frame)).Written);
                Assert.Equal(1, net.TxDropped);
                Assert.Empty(d.TakeUsed(0));
                Assert.False(d.NeedsReset);
            }

            int good = OpenRawTun("svtest1", (short)(Libc.IFF_TAP | Libc.IFF_NO_PI | Libc.IFF_VNET_HDR));
            using (var adopted = Tap.Adopt(good))
            {
                Assert.Equal("svtest1", adopted.Name);
                Assert.Equal(Tap.VnetHeaderSize, adopted.HeaderSize);
            }

            int noVnet = OpenRawTun("svtest2", (short)(Libc.IFF_TAP | Libc.IFF_NO_PI));
            Assert.Contains("svtest2): opened without IFF_VNET_HDR", Assert.Throws<TapException>(() => Tap.Adopt(noVnet)).Message);
            Libc.Close(noVnet);

            int tun = OpenRawTun("svtest3", (short)(Libc.IFF_TUN | Libc.IFF_NO_PI | Libc.IFF_VNET_HDR));
            Assert.Contains("not a tap", Assert.Throws<TapException>(() => Tap.Adopt(tun)).Message);
            using (var held = new FileDescriptor(tun))
            {
                // The name is taken by a tun device: opening it as a tap fails with a message naming it.
                var e = Assert.Throws<TapException>(() => Tap.Open("svtest3"));
                Assert.StartsWith("tap svtest3: ", e.Message);
            }
        });
    }
}
