using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.State;
using StratoVirt.Tests.Devices;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Devices.Vsock;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>Saved state of the virtio core and of each device: captured from a device a driver has used, restored
/// into one that continues where it stopped.</summary>
[Trait("Level", "Unit")]
public sealed class VirtioStateTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Disposables _owned = new();
    private int _images;

    public void Dispose()
    {
        _owned.Dispose();
        _dir.Dispose();
    }

    private T Own<T>(T d) where T : IDisposable => _owned.Own(d);

    [Fact]
    public void ADeviceAndItsCoreRestoredOverTheSameMemoryContinueWhereTheyStopped()
    {
        var d = Own(new TestDriver(new VirtioRng("/dev/urandom") { Id = "rng0" }));
        d.Initialize(queueSize: 8);
        for (int i = 0; i < 5; i++) d.Request(0, TestBuffer.Out(16)); // the used index wraps the 8-entry ring later
        var device = StateRecord.Capture(d.Device);
        var core = StateRecord.Capture(d.Transport.Core);

        // A new device and transport over the same guest memory, as after a restore.
        var rng = new VirtioRng("/dev/urandom") { Id = "rng0", Loop = d.Loop };
        var irq = new CountingInterruptLine();
        var transport = Own(new VirtioMmioTransport(rng, d.Memory, irq));
        transport.Attach();
        device.Restore(rng);
        core.Restore(transport.Core);
        Assert.True(rng.Active);
        Assert.Equal(d.Transport.Status, transport.Status);
        Assert.Equal(d.Device.Features, rng.Features);
        Assert.Equal(StateRecord.Capture(d.Transport.Core).Data, StateRecord.Capture(transport.Core).Data);

        // The driver's next requests are served by the new device, whose used index goes on from 5; the driver
        // asks (EVENT_IDX) for one interrupt, once the used index passes 10.
        d.SetUsedEvent(0, 10);
        for (int i = 0; i < 6; i++)
        {
            ushort head = d.Add(0, [TestBuffer.Out(8)]);
            transport.Write(VirtioMmioRegister.QueueNotify, BitConverter.GetBytes(0u));
            d.Pump();
            var c = Assert.Single(d.TakeUsed(0));
            Assert.Equal((head, 8u), (c.Head, c.Written));
        }
        Assert.Equal(11, d.UsedIndex(0));
        Assert.Equal(1, irq.Count);
    }

    [Fact]
    public void ARestoreAfterAResetBringsTheSameDeviceBack()
    {
        var d = Own(new TestDriver(new VirtioRng("/dev/urandom") { Id = "rng0" }));
        d.Initialize();
        d.Request(0, TestBuffer.Out(4));
        var device = StateRecord.Capture(d.Device);
        var core = StateRecord.Capture(d.Transport.Core);
        d.WriteReg(VirtioMmioRegister.Status, 0);
        Assert.False(d.Device.Active);
        device.Restore(d.Device);
        core.Restore(d.Transport.Core);
        Assert.NotEqual(0u, d.ReadReg(VirtioMmioRegister.Status) & VirtioStatus.DriverOk);
        Assert.Equal(4u, d.Request(0, TestBuffer.Out(4)).Written);
        Assert.Equal(2, d.UsedIndex(0));
    }

    [Fact]
    public void AStoppedDeviceStaysStoppedAfterARestore()
    {
        var d = Own(new TestDriver(new VirtioRng("/dev/urandom") { Id = "rng0" }));
        d.Initialize();
        d.Publish(0, 200); // a head outside the ring: the device stops
        d.Notify(0);
        Assert.True(d.NeedsReset);
        var core = StateRecord.Capture(d.Transport.Core);
        d.WriteReg(VirtioMmioRegister.Status, 0);
        core.Restore(d.Transport.Core);
        Assert.True(d.NeedsReset);
        Assert.False(d.Device.Active);
        Assert.Equal(VirtioMmioRegister.ConfigChangeInterrupt, d.ReadReg(VirtioMmioRegister.InterruptStatus));
        Assert.NotEqual(0u, d.Initialize() & VirtioStatus.DriverOk); // a reset recovers it as before
    }

    [Fact]
    public void ALiveDeviceRefusesARestore()
    {
        var d = Own(new TestDriver(new VirtioRng("/dev/urandom") { Id = "rng0" }));
        d.Initialize();
        var e = Assert.Throws<StateException>(() => StateRecord.Capture(d.Device).Restore(d.Device));
        Assert.Equal("virtio-rng rng0 is live: state is restored into a device its driver has not started", e.Message);
        Assert.Throws<StateException>(() => StateRecord.Capture(d.Transport.Core).Restore(d.Transport.Core));
    }

    [Fact]
    public void ACoreRecordWithAnotherQueueCountIsRefused()
    {
        var rng = Own(new TestDriver(new VirtioRng("/dev/urandom") { Id = "rng0" }));
        var net = Own(new TestDriver(new VirtioNet(null) { Id = "net0" }));
        var e = Assert.Throws<StateException>(() => StateRecord.Capture(net.Transport.Core).Restore(rng.Transport.Core));
        Assert.Equal("virtio-core state of virtio rng0 has 2 queues; the device has 1", e.Message);
    }

    /// <summary>Saves <paramref name="used"/>'s record after its driver started it, restores it into
    /// <paramref name="fresh"/>, and checks that <paramref name="fresh"/> saves the same record.</summary>
    private void RoundTrip(VirtioDevice used, Func<VirtioDevice> fresh)
    {
        var d = Own(new TestDriver(used));
        Assert.NotEqual(0u, d.Initialize() & VirtioStatus.DriverOk);
        var record = StateRecord.Capture(used);
        Assert.NotEqual(0UL, BitConverter.ToUInt64(record.Data)); // the features come first
        var copy = Own(fresh());
        record.Restore(copy);
        Assert.Equal(used.Features, copy.Features);
        Assert.Equal(record.Data, StateRecord.Capture(copy).Data);
    }

    private string Image(int size = 4096) => _dir.Write($"disk{_images++}.img", new byte[size]);

    [Fact]
    public void BlockKeepsItsFeaturesAndSerial()
    {
        string image = Image();
        var blk = new VirtioBlock(image, readOnly: true, direct: false, serial: "SER1") { Id = "blk0" };
        RoundTrip(blk, () => new VirtioBlock(image, readOnly: true, direct: false) { Id = "blk0" });
    }

    [Fact]
    public void BlockRestoresOntoAnotherImageOfTheSameSizeAndModeOnly()
    {
        var blk = Own(new VirtioBlock(Image(), readOnly: true, direct: false) { Id = "blk0" });
        Assert.NotEqual(0u, Own(new TestDriver(blk)).Initialize() & VirtioStatus.DriverOk);
        var record = StateRecord.Capture(blk);
        var copy = Own(new VirtioBlock(Image(), readOnly: true, direct: false) { Id = "blk0" }); // a template's clone
        record.Restore(copy);
        Assert.Equal(blk.Features, copy.Features);

        string Refusal(VirtioBlock device) => Assert.Throws<StateException>(() => record.Restore(Own(device))).Message;
        const string Saved = "virtio-blk blk0: the saved state has a read-only medium of 4096 bytes, the device has";
        const string Rule = "(a restore may give another image file, of the same size and mode)";
        Assert.Equal($"{Saved} a read-only medium of 8192 bytes {Rule}",
            Refusal(new VirtioBlock(Image(8192), readOnly: true, direct: false) { Id = "blk0" }));
        Assert.Equal($"{Saved} a read-write medium of 4096 bytes {Rule}",
            Refusal(new VirtioBlock(Image(), readOnly: false, direct: false) { Id = "blk0" }));
        Assert.Equal($"{Saved} no medium {Rule}", Refusal(VirtioBlock.Empty("blk0")));
    }

    [Fact]
    public void NetKeepsItsMacAndWhetherTheDriverReadIt()
    {
        byte[] mac = [0x52, 0x54, 0, 1, 2, 3];
        var net = new VirtioNet(new PacketPair(), mac) { Id = "net0" };
        RoundTrip(net, () => new VirtioNet(new PacketPair()) { Id = "net0" });
        var copy = Own(new VirtioNet(null) { Id = "net0" });
        StateRecord.Capture(net).Restore(copy);
        Assert.Equal(mac, copy.Mac);
    }

    [Fact]
    public void ConsoleChecksItsChardev()
    {
        var chardev = Own(new FileChardev("con0", Path.Combine(_dir.Path, "out")));
        var console = new VirtioConsole(chardev) { Id = "console0" };
        var d = Own(new TestDriver(console));
        d.Initialize();
        var record = StateRecord.Capture(console);
        var other = Own(new FileChardev("con1", Path.Combine(_dir.Path, "out1")));
        var e = Assert.Throws<StateException>(() => record.Restore(Own(new VirtioConsole(other) { Id = "console0" })));
        Assert.Equal("virtio-console console0: the saved state has chardev con0, the device has con1", e.Message);
    }

    [Fact]
    public void RngKeepsItsFeatures() =>
        RoundTrip(new VirtioRng("/dev/urandom") { Id = "rng0" }, () => new VirtioRng("/dev/urandom") { Id = "rng0" });

    [Fact]
    public void BalloonKeepsTargetAndActual()
    {
        var balloon = new VirtioBalloon(64 << 20, deflateOnOom: true) { Id = "balloon0" };
        balloon.SetTarget(32 << 20);
        RoundTrip(balloon, () => new VirtioBalloon(64 << 20, deflateOnOom: true) { Id = "balloon0" });
        var copy = Own(new VirtioBalloon(64 << 20, deflateOnOom: true) { Id = "balloon0" });
        StateRecord.Capture(balloon).Restore(copy);
        Assert.Equal(balloon.TargetPages, copy.TargetPages);
        var e = Assert.Throws<StateException>(() =>
            StateRecord.Capture(balloon).Restore(Own(new VirtioBalloon(64 << 20) { Id = "balloon0" })));
        Assert.Equal("virtio-balloon balloon0: the saved state has deflate-on-oom True, the device has False", e.Message);
    }

    [Fact]
    public void VsockChecksItsCidAndSocket()
    {
        string path = Path.Combine(_dir.Path, "v.sock");
        var vsock = new VirtioVsock(3, path) { Id = "vsock0" };
        StateRecord record;
        using (var d = new TestDriver(vsock))
        {
            d.Initialize();
            record = StateRecord.Capture(vsock);
        }
        using (var copy = new VirtioVsock(3, path) { Id = "vsock0" })
        {
            record.Restore(copy);
            Assert.Equal(record.Data, StateRecord.Capture(copy).Data);
        }
        var other = Own(new VirtioVsock(4, path) { Id = "vsock0" });
        Assert.Equal("vhost-vsock vsock0: the saved state has guest CID 3, the device has 4",
            Assert.Throws<StateException>(() => record.Restore(other)).Message);
    }

    [Fact]
    public void ARestoredVsockTellsItsDriverThatTheTransportWasReset()
    {
        string path = Path.Combine(_dir.Path, "reset.sock");
        var vsock = new VirtioVsock(3, path) { Id = "vsock0" };
        var d = Own(new TestDriver(vsock));
        d.Initialize();
        ushort head = d.Add(2, [TestBuffer.Out(8)]); // the driver's event buffer
        var device = StateRecord.Capture(vsock);
        var core = StateRecord.Capture(d.Transport.Core);
        vsock.Dispose(); // its socket path is the restored device's

        var restored = Own(new VirtioVsock(3, path) { Id = "vsock0", Loop = d.Loop });
        var transport = Own(new VirtioMmioTransport(restored, d.Memory, new CountingInterruptLine()));
        transport.Attach();
        device.Restore(restored);
        core.Restore(transport.Core);
        d.Pump();
        var reset = Assert.Single(d.TakeUsed(2));
        Assert.Equal((head, 4u), (reset.Head, reset.Written));
        Assert.Equal(new byte[4], reset.WrittenBytes[..4]); // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
        d.Add(2, [TestBuffer.Out(8)]);
        d.Notify(2);
        d.Pump();
        Assert.Empty(d.TakeUsed(2)); // told once
    }
}
