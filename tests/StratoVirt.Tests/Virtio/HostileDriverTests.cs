using System.Buffers.Binary;
using StratoVirt.Devices.Chardev;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Devices.Vsock;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>
/// A hostile driver against every virtio device: DRIVER_OK with queues that are not ready, and buffers of length
/// zero or outside guest RAM on every queue. Each device must either serve the request or stop itself
/// (NEEDS_RESET); nothing may escape to the caller, and after a reset the device works again.
/// </summary>
[Trait("Level", "Unit")]
public sealed class HostileDriverTests : IDisposable
{
    /// <summary>Not guest RAM: the test driver's guest has 16 MiB.</summary>
    private const ulong OutsideRam = 0xC000_0000;

    private readonly TempDir _dir = new();
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _dir.Dispose();
    }

    public static TheoryData<string> Devices => ["rng", "blk", "net", "console", "balloon", "vsock"];

    /// <summary>A driver bound to a fresh device of <paramref name="kind"/>, and a request the device completes
    /// on its own (no host peer needed): the queue and the buffers.</summary>
    private (TestDriver Driver, int ProbeQueue, TestBuffer[] Probe) Start(string kind)
    {
        VirtioDevice device;
        (int, TestBuffer[]) probe;
        switch (kind)
        {
            case "rng":
                device = new VirtioRng("/dev/urandom");
                probe = (0, [TestBuffer.Out(16)]);
                break;
            case "blk":
                string image = Path.Combine(_dir.Path, "disk.img");
                File.WriteAllBytes(image, new byte[1 << 20]);
                device = new VirtioBlock(image, readOnly: false, direct: false);
                probe = (0, [TestBuffer.In(VirtioBlockTests.Header(VirtioBlockRequest.In)), TestBuffer.Out(512), TestBuffer.Out(1)]);
                break;
            case "net":
                device = new VirtioNet(new PacketPair()); // the device owns its backend
                probe = (1, [TestBuffer.In(new byte[12 + 60])]); // virtio-net header, then a minimal frame
                break;
            case "console":
                device = new VirtioConsole(Own(new FileChardev("con0", Path.Combine(_dir.Path, "console.out"))));
                probe = (1, [TestBuffer.In("hello"u8.ToArray())]);
                break;
            case "balloon":
                device = new VirtioBalloon(16 << 20, deflateOnOom: true, freePageReporting: true);
                probe = (0, [TestBuffer.In(BitConverter.GetBytes(0x800u))]);
                break;
            case "vsock":
                device = new VirtioVsock(3, Path.Combine(_dir.Path, "v.sock"));
                probe = (1, [TestBuffer.In(VsockRequest(1234))]);
                break;
            default:
                throw new ArgumentException(kind);
        }
        var driver = Own(new TestDriver(device));
        return (driver, probe.Item1, probe.Item2);
    }

    private T Own<T>(T d) where T : IDisposable
    {
        _owned.Add(d);
        return d;
    }

    /// <summary>A guest's connection request to host port <paramref name="port"/>, which nobody serves.</summary>
    private static byte[] VsockRequest(uint port)
    {
        var p = new byte[VirtioVsock.HeaderSize];
        BinaryPrimitives.WriteUInt64LittleEndian(p, 3);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(8), VirtioVsock.HostCid);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(16), 50000);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(20), port);
        BinaryPrimitives.WriteUInt16LittleEndian(p.AsSpan(28), VirtioVsock.TypeStream);
        BinaryPrimitives.WriteUInt16LittleEndian(p.AsSpan(30), VirtioVsock.OpRequest);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(36), VirtioVsock.BufferSize);
        return p;
    }

    private static void NotifyEveryQueue(TestDriver d)
    {
        for (int q = 0; q < d.Device.QueueCount; q++) d.Notify(q);
    }

    /// <summary>After whatever the hostile driver did: a reset and a proper initialisation bring the device back,
    /// and it serves a request (its notify handler is still attached, its queues work).</summary>
    private static void AssertRecovers(TestDriver d, int probeQueue, TestBuffer[] probe)
    {
        uint status = d.Initialize();
        Assert.NotEqual(0u, status & VirtioStatus.DriverOk);
        Assert.Equal(0u, status & VirtioStatus.NeedsReset);
        d.Request(probeQueue, probe);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void DriverOkWithoutAnyQueueIsHarmless(string kind)
    {
        var (d, probeQueue, probe) = Start(kind);
        Assert.True(d.Negotiate());
        d.DriverOk();
        NotifyEveryQueue(d);
        AssertRecovers(d, probeQueue, probe);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void DriverOkWithQueuesSetUpButNotReadyIsHarmless(string kind)
    {
        var (d, probeQueue, probe) = Start(kind);
        Assert.True(d.Negotiate());
        d.SetupQueues(ready: false);
        d.DriverOk();
        NotifyEveryQueue(d);
        AssertRecovers(d, probeQueue, probe);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void DriverOkAfterFailedDoesNotActivate(string kind)
    {
        var (d, probeQueue, probe) = Start(kind);
        Assert.True(d.Negotiate());
        d.WriteReg(VirtioMmioRegister.Status, d.ReadReg(VirtioMmioRegister.Status) | VirtioStatus.Failed);
        d.SetupQueues();
        d.DriverOk();
        NotifyEveryQueue(d);
        Assert.False(d.Device.Active);
        AssertRecovers(d, probeQueue, probe);
    }

    /// <summary>Every queue of each device (the balloon with free page reporting: 3).</summary>
    public static TheoryData<string, int> Queues()
    {
        var data = new TheoryData<string, int>();
        foreach (var (kind, count) in new[] { ("rng", 1), ("blk", 1), ("net", 2), ("console", 2), ("balloon", 3), ("vsock", 3) })
            for (int q = 0; q < count; q++) data.Add(kind, q);
        return data;
    }

    [Theory]
    [MemberData(nameof(Queues))]
    public void ZeroLengthBuffersOutsideRamAreServedOrStopTheDevice(string kind, int queue)
    {
        var (d, probeQueue, probe) = Start(kind);
        foreach (bool writable in new[] { false, true })
        {
            Assert.NotEqual(0u, d.Initialize() & VirtioStatus.DriverOk);
            d.AddAt(queue, [(OutsideRam, 0, writable)]);
            d.Notify(queue);
            AssertServedOrStopped(d, queue);
            // The same between two buffers that are fine.
            ulong inside = d.Allocate(64);
            d.AddAt(queue, [(inside, 16, writable), (OutsideRam, 0, writable), (inside + 16, 16, writable)]);
            d.Notify(queue);
            AssertServedOrStopped(d, queue);
        }
        AssertRecovers(d, probeQueue, probe);
    }

    [Theory]
    [MemberData(nameof(Queues))]
    public void BuffersOutsideRamStopTheDevice(string kind, int queue)
    {
        var (d, probeQueue, probe) = Start(kind);
        foreach (bool writable in new[] { false, true })
        {
            Assert.NotEqual(0u, d.Initialize() & VirtioStatus.DriverOk);
            d.AddAt(queue, [(OutsideRam, 64, writable)]);
            d.Notify(queue);
            // A device that took the chain must have refused it; one that waits for host data has not looked yet.
            Assert.True(d.NeedsReset || d.UsedIndex(queue) == 0,
                $"{kind} queue {queue} completed a buffer outside guest RAM");
            // The last byte of RAM and one past it.
            Assert.NotEqual(0u, d.Initialize() & VirtioStatus.DriverOk);
            d.AddAt(queue, [(d.Memory.TotalSize - 8, 16, writable)]);
            d.Notify(queue);
            Assert.True(d.NeedsReset || d.UsedIndex(queue) == 0,
                $"{kind} queue {queue} completed a buffer crossing the end of guest RAM");
        }
        AssertRecovers(d, probeQueue, probe);
    }

    /// <summary>The device either completed every chain it was given on <paramref name="queue"/>, left them for
    /// host data (a receive queue), or stopped itself; it never half-completes.</summary>
    private static void AssertServedOrStopped(TestDriver d, int queue)
    {
        if (d.NeedsReset) return;
        Assert.True(d.Device.Active, "the device stopped without NEEDS_RESET");
        d.TakeUsed(queue);
    }
}
