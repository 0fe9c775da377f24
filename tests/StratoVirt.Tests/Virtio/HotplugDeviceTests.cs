using System.Buffers.Binary;
using StratoVirt.Machine;
using StratoVirt.Qmp;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>Hotplug slots: images swapped in and out of an empty virtio-blk, a backend into an empty virtio-net,
/// driven through the in-test virtio driver, and <see cref="ReplaceableSlots"/> with real devices.</summary>
[Trait("Level", "Unit")]
[Collection(nameof(ImageLockCollection))]
public sealed class HotplugDeviceTests : IDisposable
{
    private const int Sector = VirtioBlock.SectorSize;
    private readonly TempDir _dir = new();
    private readonly List<IDisposable> _open = [];

    public void Dispose()
    {
        foreach (var d in _open) d.Dispose();
        _dir.Dispose();
    }

    private TestDriver Start(VirtioDevice device)
    {
        var d = new TestDriver(device);
        _open.Add(d);
        Assert.NotEqual(0u, d.Initialize(queueSize: 16) & VirtioStatus.DriverOk);
        return d;
    }


    private static byte WriteSector(TestDriver d, ulong sector, byte[] data) =>
        d.Request(0, TestBuffer.In(VirtioBlockTests.Header(VirtioBlockRequest.Out, sector)), TestBuffer.In(data), TestBuffer.Out(1))
            .WrittenBytes[^1];

    private static (byte Status, byte[] Data) ReadSector(TestDriver d, ulong sector)
    {
        var c = d.Request(0, TestBuffer.In(VirtioBlockTests.Header(VirtioBlockRequest.In, sector)), TestBuffer.Out(Sector), TestBuffer.Out(1));
        return (c.WrittenBytes[^1], c.WrittenBytes[..Sector]);
    }

    /// <summary>The status of a read whose chain has no data buffer: a refused request writes only its status
    /// byte, which a chain with data would leave after unwritten data.</summary>
    private static byte RefusedReadStatus(TestDriver d, ulong sector) =>
        d.Request(0, TestBuffer.In(VirtioBlockTests.Header(VirtioBlockRequest.In, sector)), TestBuffer.Out(1)).WrittenBytes[^1];

    private static ulong Capacity(TestDriver d) => BinaryPrimitives.ReadUInt64LittleEndian(d.ReadConfig(0, 8));

    /// <summary>True when, since the last call, a config-change interrupt was raised (then acknowledged here).</summary>
    private static bool TookConfigInterrupt(TestDriver d, ref uint generation)
    {
        uint status = d.ReadReg(VirtioMmioRegister.InterruptStatus), now = d.ReadReg(VirtioMmioRegister.ConfigGeneration);
        d.WriteReg(VirtioMmioRegister.InterruptAck, status);
        bool changed = (status & VirtioMmioRegister.ConfigChangeInterrupt) != 0 && now != generation;
        generation = now;
        return changed;
    }

    private string Image(int sectors, byte fill)
    {
        var bytes = new byte[sectors * Sector];
        Array.Fill(bytes, fill);
        return _dir.Write($"disk{fill}.img", bytes);
    }

    [Fact]
    public void AnEmptyDriveTakesAnImageServesItAndLetsItGo()
    {
        var blk = VirtioBlock.Empty("slot1");
        var d = Start(blk);
        ulong f = d.DeviceFeatures();
        Assert.Equal(0UL, f & VirtioBlockFeature.ReadOnly);
        Assert.NotEqual(0UL, f & (VirtioBlockFeature.Flush | VirtioBlockFeature.Discard | VirtioBlockFeature.WriteZeroes));
        Assert.Equal(0UL, Capacity(d));
        Assert.Equal(VirtioBlockStatus.IoError, RefusedReadStatus(d, 0));
        Assert.Equal(VirtioBlockStatus.IoError, WriteSector(d, 0, new byte[Sector]));
        uint generation = d.ReadReg(VirtioMmioRegister.ConfigGeneration);
        int irqs = d.Irq.Count;

        string path = Image(8, 0x5A);
        blk.Insert(RawImage.Open(path, readOnly: false, direct: false), "HOTSERIAL");
        Assert.True(TookConfigInterrupt(d, ref generation));
        Assert.True(d.Irq.Count > irqs);
        Assert.Equal(8UL, Capacity(d));
        Assert.Equal(path, blk.Path);
        var (status, data) = ReadSector(d, 7);
        Assert.Equal(VirtioBlockStatus.Ok, status);
        Assert.All(data, b => Assert.Equal(0x5A, b));
        var pattern = Enumerable.Range(0, Sector).Select(i => (byte)i).ToArray();
        Assert.Equal(VirtioBlockStatus.Ok, WriteSector(d, 3, pattern));
        Assert.Equal(pattern, ReadSector(d, 3).Data);
        Assert.Equal(VirtioBlockStatus.IoError, RefusedReadStatus(d, 9)); // bounds as for any drive
        // While the drive holds the image, nobody else may open it read-write.
        Assert.Throws<SysException>(() => RawImage.Open(path, readOnly: false, direct: false).Dispose());
        Assert.Throws<InvalidOperationException>(() => blk.Insert(RawImage.Open(Image(1, 1), false, false), null));

        blk.Eject();
        Assert.True(TookConfigInterrupt(d, ref generation));
        Assert.Equal(0UL, Capacity(d));
        Assert.False(blk.HasMedium);
        Assert.Equal(VirtioBlockStatus.IoError, RefusedReadStatus(d, 0));
        // The image was synced and closed: its lock is gone and the write is in the file.
        using (RawImage.Open(path, readOnly: false, direct: false)) { }
        Assert.Equal(pattern, File.ReadAllBytes(path)[(3 * Sector)..(4 * Sector)]);
    }

    [Fact]
    public void AReadOnlyImageInAReadWriteSlotRefusesWrites()
    {
        var blk = VirtioBlock.Empty("slot0");
        var d = Start(blk);
        string path = Image(4, 0x11);
        blk.Insert(RawImage.Open(path, readOnly: true, direct: false), null);
        Assert.True(blk.ReadOnly);
        Assert.Equal(VirtioBlockStatus.Ok, ReadSector(d, 0).Status);
        Assert.Equal(VirtioBlockStatus.IoError, WriteSector(d, 0, new byte[Sector]));
        Assert.All(File.ReadAllBytes(path), b => Assert.Equal(0x11, b));
    }

    [Fact]
    public void AnEmptyNetSlotHasItsLinkDownUntilABackendIsAttached()
    {
        var net = new VirtioNet(null) { Id = "net-slot0" };
        var d = new TestDriver(net);
        _open.Add(d);
        Assert.Equal(new byte[] { 0, 0 }, d.ReadConfig(6, 2)); // link down
        byte[] mac = [0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF];
        Assert.NotEqual(0u, d.Initialize(queueSize: 16) & VirtioStatus.DriverOk);
        // The guest sends into the void: the frame is dropped, the buffer returned.
        d.Request(VirtioNet.TxQueue, TestBuffer.In(new byte[12 + 60]));
        Assert.Equal(1, net.TxDropped);
        uint generation = d.ReadReg(VirtioMmioRegister.ConfigGeneration);

        var pair = new PacketPair();
        net.Attach(pair, mac); // the driver above never read the MAC: the device takes this one
        Assert.True(TookConfigInterrupt(d, ref generation));
        Assert.Equal(new byte[] { 1, 0 }, d.ReadConfig(6, 2));
        Assert.Equal(mac, d.ReadConfig(0, 6));
        var frame = new byte[12 + 60];
        frame[12] = 0x42;
        d.Request(VirtioNet.TxQueue, TestBuffer.In(frame));
        Assert.Equal(frame, pair.Receive());
        Assert.Throws<InvalidOperationException>(() => net.Attach(new PacketPair(), null));

        net.Detach();
        Assert.True(TookConfigInterrupt(d, ref generation));
        Assert.Equal(new byte[] { 0, 0 }, d.ReadConfig(6, 2));
        Assert.Null(net.BackendFd);
        d.Request(VirtioNet.TxQueue, TestBuffer.In(frame));
        Assert.Equal(2, net.TxDropped);
        // Once read, the MAC stays: a later attach with another one keeps the guest's.
        net.Attach(new PacketPair(), [0x52, 0x54, 0, 0, 0, 1]);
        Assert.Equal(mac, d.ReadConfig(0, 6));
    }

    [Fact]
    public void SlotsPlugAndUnplugStoredBackendsIntoRealDevices()
    {
        var deleted = new List<string>();
        using var loop = new EventLoop("slots");
        using var rng = new VirtioRng("/dev/urandom") { Id = "rng0" };
        string cold = Image(2, 0x22);
        var coldBlk = new VirtioBlock(cold, direct: false) { Id = "rootfs" };
        using var slots = new ReplaceableSlots([coldBlk], [], loop, [rng.Id], deleted.Add);
        var devices = slots.Devices.ToList();
        Assert.Equal(ReplaceableSlots.BlockSlots + ReplaceableSlots.NetSlots, devices.Count);
        Assert.Same(coldBlk, devices[0]);
        Assert.Equal("rootfs", slots.BlockSlotId(0));
        Assert.All(devices.Skip(1).Take(3), dev => Assert.False(((VirtioBlock)dev).HasMedium));
        Assert.All(devices.Skip(4), dev => Assert.Null(((VirtioNet)dev).BackendFd));
        foreach (var dev in devices.Skip(1)) _open.Add(dev);
        var d = Start(slots.BlockDevice(2));

        string path = Image(16, 0x33);
        slots.BlockdevAdd(new BlockdevSpec("drive1", path, false, false));
        Assert.Contains("already exists", Assert.Throws<HotplugException>(() =>
            slots.BlockdevAdd(new BlockdevSpec("drive1", Image(1, 2), false, false))).Message);
        Assert.Contains("in use by another VM or drive", Assert.Throws<HotplugException>(() =>
            slots.BlockdevAdd(new BlockdevSpec("again", path, false, false))).Message);
        Assert.Contains("'missing'", Assert.Throws<HotplugException>(() =>
            slots.DeviceAdd(new DeviceAddSpec("x", HotplugKind.Block, "missing", 2, null, null))).Message);
        Assert.Contains("occupied already by 'rootfs'", Assert.Throws<HotplugException>(() =>
            slots.DeviceAdd(new DeviceAddSpec("drive1", HotplugKind.Block, "drive1", 0, null, null))).Message);
        Assert.Contains("out of range", Assert.Throws<HotplugException>(() =>
            slots.DeviceAdd(new DeviceAddSpec("drive1", HotplugKind.Block, "drive1", 4, null, null))).Message);
        Assert.Contains("already in use", Assert.Throws<HotplugException>(() =>
            slots.DeviceAdd(new DeviceAddSpec("rng0", HotplugKind.Block, "drive1", 2, null, null))).Message);

        slots.DeviceAdd(new DeviceAddSpec("drive1", HotplugKind.Block, "drive1", 2, null, "S1"));
        Assert.Equal("drive1", slots.BlockSlotId(2));
        Assert.Equal(16UL, Capacity(d));
        Assert.All(ReadSector(d, 15).Data, b => Assert.Equal(0x33, b));
        Assert.Contains("in use by device 'drive1'", Assert.Throws<HotplugException>(() => slots.BlockdevDel("drive1")).Message);
        Assert.Contains("cannot be unplugged", Assert.Throws<HotplugException>(() => slots.DeviceDel("rng0")).Message);
        Assert.Contains("not found", Assert.Throws<HotplugException>(() => slots.DeviceDel("nope")).Message);
        Assert.Empty(deleted);

        slots.DeviceDel("drive1");
        Assert.Equal(["drive1"], deleted);
        Assert.Null(slots.BlockSlotId(2));
        Assert.Equal(0UL, Capacity(d));
        Assert.Contains("not found", Assert.Throws<HotplugException>(() => slots.BlockdevDel("drive1")).Message);
        // No slot given: the first free one (1); the cold-plugged drive can be unplugged too.
        slots.BlockdevAdd(new BlockdevSpec("drive1", path, true, false));
        slots.DeviceAdd(new DeviceAddSpec("drive1", HotplugKind.Block, "drive1", null, null, null));
        Assert.Equal("drive1", slots.BlockSlotId(1));
        slots.DeviceDel("rootfs");
        Assert.False(coldBlk.HasMedium);
        using (RawImage.Open(cold, readOnly: false, direct: false)) { } // its lock went with it
        // A stored, unplugged backend is closed by blockdev-del.
        string spare = Image(1, 0x44);
        slots.BlockdevAdd(new BlockdevSpec("spare", spare, false, false));
        slots.BlockdevDel("spare");
        using (RawImage.Open(spare, readOnly: false, direct: false)) { }
        coldBlk.Dispose();
    }

    [Fact]
    public void MoreColdDevicesThanSlotsAreRefusedBeforeAnythingOpens()
    {
        var blk = Enumerable.Range(0, 5).Select(i => (VirtioDeviceConfig)new BlockDeviceConfig($"b{i}", "/nonexistent", false, true, null)).ToList();
        Assert.Contains("4 block slots", Assert.Throws<MachineConfigException>(() => ReplaceableSlots.CheckCapacity(blk)).Message);
        var net = Enumerable.Range(0, 3).Select(i => (VirtioDeviceConfig)new NetDeviceConfig($"n{i}", "tap0", null, null)).ToList();
        Assert.Contains("2 net slots", Assert.Throws<MachineConfigException>(() => ReplaceableSlots.CheckCapacity(net)).Message);
        var others = Enumerable.Range(0, 5).Select(i => (VirtioDeviceConfig)new RngDeviceConfig($"r{i}", "/dev/urandom")).ToList();
        Assert.Contains("leaving 4", Assert.Throws<MachineConfigException>(() => ReplaceableSlots.CheckCapacity(others)).Message);
        ReplaceableSlots.CheckCapacity([.. blk.Take(4), .. net.Take(2), .. others.Take(4)]);
    }
}
