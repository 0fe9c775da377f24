using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>The virtio-mmio transport and split virtqueue, driven through virtio-rng (the simplest device).</summary>
[Trait("Level", "Unit")]
public sealed class TransportTests : IDisposable
{
    private readonly TestDriver _d = new(new VirtioRng("/dev/urandom") { Id = "rng0" });

    public void Dispose() => _d.Dispose();

    [Fact]
    public void IdentifiesAsAVersion2DeviceOfItsType()
    {
        Assert.Equal(0x74726976u, _d.ReadReg(VirtioMmioRegister.MagicValue));
        Assert.Equal(2u, _d.ReadReg(VirtioMmioRegister.Version));
        Assert.Equal(VirtioDeviceId.Rng, _d.ReadReg(VirtioMmioRegister.DeviceId));
        _d.WriteReg(VirtioMmioRegister.QueueSel, 0);
        Assert.Equal(256u, _d.ReadReg(VirtioMmioRegister.QueueNumMax));
        _d.WriteReg(VirtioMmioRegister.QueueSel, 1);
        Assert.Equal(0u, _d.ReadReg(VirtioMmioRegister.QueueNumMax)); // no such queue
        ulong f = _d.DeviceFeatures();
        Assert.NotEqual(0UL, f & VirtioFeature.Version1);
        Assert.NotEqual(0UL, f & VirtioFeature.RingIndirectDesc);
        Assert.NotEqual(0UL, f & VirtioFeature.RingEventIdx);
    }

    [Fact]
    public void ADriverWithoutVersion1IsRefusedAtFeaturesOk()
    {
        uint status = _d.Initialize(features: 0);
        Assert.Equal(0u, status & VirtioStatus.FeaturesOk);
        Assert.False(_d.Device.Active);
    }

    [Fact]
    public void FeaturesBeyondTheOfferAreRefused()
    {
        uint status = _d.Initialize(features: VirtioFeature.Version1 | (1UL << 40));
        Assert.Equal(0u, status & VirtioStatus.FeaturesOk);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RequestsAreFilledAndInterruptRaised(bool indirect)
    {
        Assert.NotEqual(0u, _d.Initialize() & VirtioStatus.DriverOk);
        Assert.True(_d.Device.Active);
        ushort head = _d.Add(0, [TestBuffer.Out(64), TestBuffer.Out(32)], indirect);
        _d.Notify(0);
        var c = Assert.Single(_d.TakeUsed(0));
        Assert.Equal(head, c.Head);
        Assert.Equal(96u, c.Written);
        Assert.Contains(c.WrittenBytes, b => b != 0xEE);
        Assert.True(_d.Irq.Count > 0);
        Assert.Equal(VirtioMmioRegister.UsedBufferInterrupt, _d.ReadReg(VirtioMmioRegister.InterruptStatus));
        _d.WriteReg(VirtioMmioRegister.InterruptAck, VirtioMmioRegister.UsedBufferInterrupt);
        Assert.Equal(0u, _d.ReadReg(VirtioMmioRegister.InterruptStatus));
    }

    [Fact]
    public void EventIdxSuppressesInterruptsUntilUsedEventIsPassed()
    {
        _d.Initialize();
        _d.SetUsedEvent(0, 2); // interrupt only once the used index moves past 2
        _d.Request(0, TestBuffer.Out(8));
        _d.Request(0, TestBuffer.Out(8));
        Assert.Equal(0, _d.Irq.Count);
        _d.Request(0, TestBuffer.Out(8));
        Assert.Equal(1, _d.Irq.Count);
    }

    [Fact]
    public void ResetReturnsEverythingToItsInitialState()
    {
        _d.Initialize();
        _d.Request(0, TestBuffer.Out(8));
        _d.WriteReg(VirtioMmioRegister.Status, 0);
        Assert.Equal(0u, _d.ReadReg(VirtioMmioRegister.Status));
        Assert.False(_d.Device.Active);
        _d.WriteReg(VirtioMmioRegister.QueueSel, 0);
        Assert.Equal(0u, _d.ReadReg(VirtioMmioRegister.QueueReady));
        // A driver that binds again gets a working device.
        Assert.NotEqual(0u, _d.Initialize() & VirtioStatus.DriverOk);
        Assert.Equal(16u, _d.Request(0, TestBuffer.Out(16)).Written);
    }

    [Fact]
    public void QueueOutsideGuestMemoryFailsTheDeviceNotTheVmm()
    {
        _d.WriteReg(VirtioMmioRegister.Status, VirtioStatus.Acknowledge | VirtioStatus.Driver);
        _d.WriteReg(VirtioMmioRegister.DriverFeaturesSel, 1);
        _d.WriteReg(VirtioMmioRegister.DriverFeatures, 1); // VERSION_1
        _d.WriteReg(VirtioMmioRegister.Status, VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk);
        _d.SetupQueue(0, desc: 0xFFFF_0000_0000, avail: 0x2000, used: 0x3000, size: 16);
        _d.WriteReg(VirtioMmioRegister.Status, 0xF);
        Assert.True(_d.NeedsReset);
        Assert.False(_d.Device.Active);
        Assert.Equal(VirtioMmioRegister.ConfigChangeInterrupt, _d.ReadReg(VirtioMmioRegister.InterruptStatus));
    }

    [Theory]
    [InlineData(15)] // not a power of two
    [InlineData(512)] // above QueueNumMax
    public void BadQueueSizesFailTheDevice(ushort size)
    {
        _d.WriteReg(VirtioMmioRegister.Status, 3);
        _d.WriteReg(VirtioMmioRegister.DriverFeaturesSel, 1);
        _d.WriteReg(VirtioMmioRegister.DriverFeatures, 1);
        _d.WriteReg(VirtioMmioRegister.Status, 0xB);
        _d.SetupQueue(0, desc: 0x10000, avail: 0x20000, used: 0x30000, size: size);
        _d.WriteReg(VirtioMmioRegister.Status, 0xF);
        Assert.True(_d.NeedsReset);
    }

    [Fact]
    public void ALoopingChainFailsTheDevice()
    {
        _d.Initialize();
        ulong buf = _d.Allocate(8);
        _d.WriteRawDescriptor(0, 0, buf, 8, flags: 1 | 2, next: 1);
        _d.WriteRawDescriptor(0, 1, buf, 8, flags: 1 | 2, next: 0);
        _d.Publish(0, 0);
        _d.Notify(0);
        Assert.True(_d.NeedsReset);
        Assert.Equal(0, _d.UsedIndex(0));
    }

    [Theory]
    [InlineData(0xFFFF_FFFF_0000UL, 8u, (ushort)2, (ushort)0)] // buffer outside RAM
    [InlineData(0x100000UL, 8u, (ushort)(2 | 1), (ushort)99)] // next index outside the table
    [InlineData(0x100000UL, 24u, (ushort)4, (ushort)0)] // indirect table length not a multiple of 16
    [InlineData(0xFFFF_0000_0000UL, 32u, (ushort)4, (ushort)0)] // indirect table outside RAM
    [InlineData(0x100000UL, 32u, (ushort)(4 | 1), (ushort)1)] // indirect with NEXT
    public void MalformedDescriptorsFailTheDevice(ulong addr, uint len, ushort flags, ushort next)
    {
        _d.Initialize();
        _d.WriteRawDescriptor(0, 0, addr, len, flags, next);
        _d.Publish(0, 0);
        _d.Notify(0);
        Assert.True(_d.NeedsReset);
    }

    [Fact]
    public void AHeadOutsideTheRingFailsTheDevice()
    {
        _d.Initialize();
        _d.Publish(0, 200);
        _d.Notify(0);
        Assert.True(_d.NeedsReset);
    }

    [Fact]
    public void AnAvailIndexRunningAheadOfTheRingFailsTheDevice()
    {
        _d.Initialize();
        _d.SetAvailIndex(0, 1000);
        _d.Notify(0);
        Assert.True(_d.NeedsReset);
    }

    [Fact]
    public void AReadableBufferAfterAWritableOneFailsTheDevice()
    {
        _d.Initialize();
        ulong buf = _d.Allocate(16);
        _d.WriteRawDescriptor(0, 0, buf, 8, flags: 2 | 1, next: 1);
        _d.WriteRawDescriptor(0, 1, buf + 8, 8, flags: 0, next: 0);
        _d.Publish(0, 0);
        _d.Notify(0);
        Assert.True(_d.NeedsReset);
    }

    [Fact]
    public void NotificationsToQueuesThatDoNotExistAreIgnored()
    {
        _d.Initialize();
        _d.WriteReg(VirtioMmioRegister.QueueNotify, 7);
        _d.WriteReg(VirtioMmioRegister.QueueNotify, uint.MaxValue);
        _d.Pump();
        Assert.False(_d.NeedsReset);
        Assert.Equal(8u, _d.Request(0, TestBuffer.Out(8)).Written);
    }

    [Fact]
    public void NonWordRegisterAccessesReadZeroAndAreIgnored()
    {
        var b = new byte[2];
        _d.Transport.Read(VirtioMmioRegister.MagicValue, b);
        Assert.Equal([0, 0], b);
        _d.Transport.Write(VirtioMmioRegister.Status, new byte[] { 1 });
        Assert.Equal(0u, _d.ReadReg(VirtioMmioRegister.Status));
    }
}
