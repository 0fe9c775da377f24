using System.Buffers.Binary;
using System.Text;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Fs;
using StratoVirt.Virtio.Devices.VhostUserBlock;
using StratoVirt.Virtio.Transport.Mmio;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Tests.Virtio;

/// <summary>vhost-user-fs and vhost-user-blk driven through their virtio-mmio registers by the test driver, with
/// guest RAM on a shared memfd, against a fake backend over a real unix socket.</summary>
[Trait("Level", "Unit")]
public sealed unsafe class VhostUserDeviceTests : IDisposable
{
    private static readonly RamBacking SharedRam = new() { Kind = RamBackingKind.Memfd, Shared = true };
    private readonly TempDir _dir = new();
    private readonly FakeVhostUserBackend _backend;
    private readonly Disposables _owned = new();

    public VhostUserDeviceTests() => _backend = new FakeVhostUserBackend(Path.Combine(_dir.Path, "backend.sock"));

    public void Dispose()
    {
        _owned.Dispose();
        _backend.Dispose();
        _dir.Dispose();
    }

    private VhostUserBackend Backend => new("chr0", _backend.Path);

    private TestDriver FsDriver(int requestQueues = 1)
    {
        var device = new VhostUserFs("labfs", requestQueues, 128, Backend) { Id = "fs0" };
        return _owned.Own(new TestDriver(device, ram: SharedRam));
    }

    private static ulong ReadCounter(int fd)
    {
        ulong value = 0;
        return Libc.Read(fd, (byte*)&value, 8) == 8 ? value : 0;
    }

    private static void Signal(int fd)
    {
        ulong one = 1;
        Libc.Write(fd, (byte*)&one, 8);
    }

    [Fact]
    public void FsKeepsTheTagAndQueueCountInItsConfigSpace()
    {
        var d = FsDriver();
        Assert.Equal(VirtioDeviceId.Fs, d.ReadReg(VirtioMmioRegister.DeviceId));
        var config = d.ReadConfig(0, 40);
        Assert.Equal("labfs", Encoding.UTF8.GetString(config, 0, 5));
        Assert.All(config[5..36], b => Assert.Equal(0, b));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(36)));
        // No shared memory region (DAX): virtio-fs's probe needs a length of -1 for region 0, not 0.
        d.WriteReg(VirtioMmioRegister.ShmSel, 0);
        Assert.Equal((uint.MaxValue, uint.MaxValue), (d.ReadReg(VirtioMmioRegister.ShmLenLow), d.ReadReg(VirtioMmioRegister.ShmLenHigh)));
        // Offered: what the backend offers of the ring features; never the vhost-only bits.
        ulong offered = d.DeviceFeatures();
        Assert.Equal(VirtioFeature.Version1 | VirtioFeature.RingEventIdx, offered);
        // Handshake at creation: features, protocol features (REPLY_ACK from then on), queue count, owner.
        Assert.Equal([VhostUserRequest.GetFeatures, VhostUserRequest.GetProtocolFeatures, VhostUserRequest.SetProtocolFeatures,
            VhostUserRequest.GetQueueNum, VhostUserRequest.SetOwner], _backend.Received.Select(r => r.Request));
    }

    [Fact]
    public void DriverOkHandsEveryQueueToTheBackend()
    {
        var d = FsDriver();
        Assert.NotEqual(0u, d.Initialize(queueSize: 64) & VirtioStatus.DriverOk);
        Assert.False(d.NeedsReset);
        var got = _backend.Received.Skip(5).ToList();
        Assert.Equal(VhostUserRequest.SetFeatures, got[0].Request);
        Assert.Equal(VirtioFeature.Version1 | VirtioFeature.RingEventIdx | VhostUserFeature.ProtocolFeatures, got[0].U64);
        var table = got[1];
        Assert.Equal(VhostUserRequest.SetMemTable, table.Request);
        Assert.Single(table.Fds);
        var region = d.Memory.Regions[0];
        Assert.Equal(1u, table.Index);
        Assert.Equal(region.GuestAddress, BinaryPrimitives.ReadUInt64LittleEndian(table.Payload.AsSpan(8)));
        Assert.Equal(region.Size, BinaryPrimitives.ReadUInt64LittleEndian(table.Payload.AsSpan(16)));
        Assert.Equal((ulong)region.HostAddress, BinaryPrimitives.ReadUInt64LittleEndian(table.Payload.AsSpan(24)));
        var perQueue = new[] { VhostUserRequest.SetVringNum, VhostUserRequest.SetVringBase, VhostUserRequest.SetVringAddr,
            VhostUserRequest.SetVringCall, VhostUserRequest.SetVringErr, VhostUserRequest.SetVringKick, VhostUserRequest.SetVringEnable };
        Assert.Equal([.. perQueue, .. perQueue], got.Skip(2).Select(r => r.Request));
        Assert.All(got, r => Assert.True(r.NeedReply)); // REPLY_ACK: each is acknowledged
        var num = got.First(r => r.Request == VhostUserRequest.SetVringNum);
        Assert.Equal((0u, 64u), (num.Index, num.Number));
        // The vring address is where this process maps the ring: guest address + the region's host address.
        var addr = got.First(r => r.Request == VhostUserRequest.SetVringAddr);
        ulong desc = BinaryPrimitives.ReadUInt64LittleEndian(addr.Payload.AsSpan(8));
        Assert.Equal((ulong)region.HostAddress + TestDriver.RingBase, desc);
        // The backend maps the same memory: what it writes through its fd, the guest reads.
        void* mapped = Libc.Mmap(null, (nuint)region.Size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, table.Fds[0], 0);
        Assert.NotEqual((nint)(-1), (nint)mapped);
        try
        {
            ((byte*)mapped)[0x200000] = 0x5a;
            Assert.Equal(0x5a, d.Memory.ReadByte(0x200000));
        }
        finally
        {
            Libc.Munmap(mapped, (nuint)region.Size);
        }
    }

    [Fact]
    public void KicksReachTheBackendAndItsCallsBecomeUsedBufferInterrupts()
    {
        var d = FsDriver();
        d.Initialize();
        var kicks = _backend.Received.Where(r => r.Request == VhostUserRequest.SetVringKick).ToList();
        var calls = _backend.Received.Where(r => r.Request == VhostUserRequest.SetVringCall).ToList();
        ReadCounter(kicks[1].Fds[0]); // activation looks at every queue once
        d.Notify(1);
        Assert.Equal(1UL, ReadCounter(kicks[1].Fds[0]));
        // The device's loop no longer reads the notify eventfd: the backend does.
        d.Notify(1);
        d.Pump();
        Assert.Equal(1UL, ReadCounter(kicks[1].Fds[0]));

        int before = d.Irq.Count;
        Signal(calls[1].Fds[0]);
        Assert.True(d.PumpUntil(() => d.Irq.Count > before));
        Assert.Equal(VirtioInterruptStatus.UsedBuffer, d.ReadReg(VirtioMmioRegister.InterruptStatus) & VirtioInterruptStatus.UsedBuffer);
    }

    [Fact]
    public void AnErrorTheBackendSignalsStopsTheDevice()
    {
        var d = FsDriver();
        d.Initialize();
        var err = _backend.Received.First(r => r.Request == VhostUserRequest.SetVringErr && r.Index == 0);
        Signal(err.Fds[0]);
        Assert.True(d.PumpUntil(() => d.NeedsReset));
    }

    [Fact]
    public void ResetStopsEveryRingWithGetVringBase()
    {
        var d = FsDriver();
        d.Initialize();
        d.WriteReg(VirtioMmioRegister.Status, 0);
        var stops = _backend.Received.Where(r => r.Request == VhostUserRequest.GetVringBase).Select(r => r.Index).ToList();
        Assert.Equal([0u, 1u], stops);
        var disables = _backend.Received.Where(r => r.Request == VhostUserRequest.SetVringEnable && r.Number == 0).Select(r => r.Index);
        Assert.Equal([0u, 1u], disables);
        // Started again: the whole setup is sent again.
        Assert.NotEqual(0u, d.Initialize() & VirtioStatus.DriverOk);
        Assert.Equal(2, _backend.Received.Count(r => r.Request == VhostUserRequest.SetMemTable));
    }

    [Fact]
    public void ABackendThatHangsUpLeavesTheDeviceNeedingAReset()
    {
        var d = FsDriver();
        VhostUserDisconnect? seen = null;
        ((VhostUserDevice)d.Device).Disconnected += e => seen = e;
        d.Initialize();
        int before = d.Irq.Count;
        _backend.HangUp();
        Assert.True(d.PumpUntil(() => seen is not null));
        Assert.Equal(new VhostUserDisconnect("fs0", "chr0", _backend.Path), seen);
        Assert.True(d.NeedsReset);
        Assert.True(d.Irq.Count > before);
        Assert.Equal(VirtioInterruptStatus.ConfigChange, d.ReadReg(VirtioMmioRegister.InterruptStatus) & VirtioInterruptStatus.ConfigChange);
        // A driver that resets and starts again gets a failed device, not a hang.
        d.WriteReg(VirtioMmioRegister.Status, 0);
        d.Initialize();
        Assert.True(d.NeedsReset);
    }

    [Fact]
    public void ABackendWithoutVersion1OrEnoughQueuesIsRefused()
    {
        _backend.Features = VhostUserFeature.ProtocolFeatures;
        var e = Assert.Throws<VhostUserException>(() => new VhostUserFs("t", 1, 128, Backend));
        Assert.Contains("does not offer VIRTIO_F_VERSION_1", e.Message);
        using var other = new FakeVhostUserBackend(Path.Combine(_dir.Path, "other.sock")) { QueueCount = 2 };
        var queues = Assert.Throws<VhostUserException>(() => new VhostUserFs("t", 3, 128, new VhostUserBackend("c", other.Path)));
        Assert.Equal($"vhost-user socket {other.Path}: the backend serves 2 queues; the device needs 4", queues.Message);
    }

    [Fact]
    public void GuestRamThatIsNotSharedIsRefusedAtDriverOk()
    {
        var device = new VhostUserFs("labfs", 1, 128, Backend) { Id = "fs0" };
        var d = _owned.Own(new TestDriver(device));
        d.Initialize();
        Assert.True(d.NeedsReset);
        Assert.DoesNotContain(_backend.Received, r => r.Request == VhostUserRequest.SetMemTable);
    }

    [Fact]
    public void VirtioDeviceResourcesRefuseVhostUserWithoutSharedMemory()
    {
        var e = Assert.Throws<ArgumentException>(() => VirtioDeviceResources.RequireSharedMemory(
            new VirtioDeviceResources(1 << 30, _ => throw new InvalidOperationException(), null!), "vhost-user-fs-device"));
        Assert.Equal("vhost-user-fs-device needs guest RAM shared with its backend: add mem-share=on to -machine " +
            "(or use a memory backend with share=on)", e.Message);
    }

    [Fact]
    public void BlkTakesItsConfigSpaceFromTheBackend()
    {
        const ulong blkFeatures = (1UL << 2) | (1UL << 6) | (1UL << 9) | (1UL << 11) | (1UL << 12) | (1UL << 13);
        _backend.Features |= blkFeatures;
        var config = new byte[VhostUserBlock.ConfigSize];
        BinaryPrimitives.WriteUInt64LittleEndian(config, 131072); // 64 MiB
        BinaryPrimitives.WriteUInt32LittleEndian(config.AsSpan(20), 512);
        BinaryPrimitives.WriteUInt16LittleEndian(config.AsSpan(34), 4);
        _backend.Config = config;
        var device = new VhostUserBlock(1, 128, Backend) { Id = "vub0" };
        var d = _owned.Own(new TestDriver(device, ram: SharedRam));
        Assert.Equal(VirtioDeviceId.Block, d.ReadReg(VirtioMmioRegister.DeviceId));
        Assert.Equal(131072UL, device.Capacity);
        var read = d.ReadConfig(0, VhostUserBlock.ConfigSize);
        Assert.Equal(512u, BinaryPrimitives.ReadUInt32LittleEndian(read.AsSpan(20)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(read.AsSpan(34))); // the device's queues, not the backend's
        // SEG_MAX, BLK_SIZE, FLUSH, DISCARD pass; CONFIG_WCE (config writes are ignored) and MQ (one queue) do not.
        Assert.Equal((1UL << 2) | (1UL << 6) | (1UL << 9) | (1UL << 13) | VirtioFeature.Version1 | VirtioFeature.RingEventIdx,
            d.DeviceFeatures());
        var request = _backend.Received.Single(r => r.Request == VhostUserRequest.GetConfig);
        Assert.Equal((0u, (uint)VhostUserBlock.ConfigSize), (request.Index, request.Number));
        Assert.NotEqual(0u, d.Initialize() & VirtioStatus.DriverOk);
    }

    [Fact]
    public void BlkNeedsTheConfigProtocolFeatureAndMqForSeveralQueues()
    {
        _backend.ProtocolFeatures = VhostUserProtocolFeature.ReplyAck | VhostUserProtocolFeature.MultiQueue;
        var e = Assert.Throws<VhostUserException>(() => new VhostUserBlock(1, 128, Backend));
        Assert.Contains("VHOST_USER_PROTOCOL_F_CONFIG", e.Message);
        using var other = new FakeVhostUserBackend(Path.Combine(_dir.Path, "other.sock"));
        var mq = Assert.Throws<VhostUserException>(() => new VhostUserBlock(2, 128, new VhostUserBackend("c", other.Path)));
        Assert.Contains("num-queues=2 needs VIRTIO_BLK_F_MQ", mq.Message);
    }
}
