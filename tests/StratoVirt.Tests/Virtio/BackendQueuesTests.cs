using StratoVirt.Devices.State;
using StratoVirt.Machine;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>A device whose first queue a backend outside the VMM serves and whose second the VMM keeps (as
/// vhost-vsock keeps its event queue), driven through the MMIO transport: the test plays the backend on the
/// eventfds the device hands out.</summary>
[Trait("Level", "Unit")]
public sealed class BackendQueuesTests : IDisposable
{
    private readonly HalfServedDevice _device = new() { Id = "half0" };
    private readonly TestDriver _driver;

    public BackendQueuesTests()
    {
        _driver = new TestDriver(_device);
        _driver.Initialize(queueCount: 2);
        _driver.Pump();
        _driver.Transport.NotifyEvent(0).Drain(); // activation looks at every queue once
        _device.Processed.Clear();
    }

    public void Dispose()
    {
        _driver.Dispose();
        _device.Dispose();
    }

    [Fact]
    public void TheBackendsQueueIsKickedThroughItsNotifyEventfdAndTheOtherIsServedHere()
    {
        Assert.True(_device.BackendServes(0));
        Assert.False(_device.BackendServes(1));
        _driver.Notify(0);
        Assert.Empty(_device.Processed); // the loop leaves queue 0's notify eventfd to the backend
        Assert.Equal(1UL, _driver.Transport.NotifyEvent(0).Drain());
        _driver.Notify(1);
        Assert.Equal([1], _device.Processed);
    }

    [Fact]
    public void ACallFromTheBackendSetsTheUsedBufferBitBeforeTheInterrupt()
    {
        int before = _driver.Irq.Count;
        _device.BackendQueues!.Call(0).Signal();
        Assert.True(_driver.PumpUntil(() => _driver.Irq.Count > before));
        Assert.Equal(VirtioInterruptStatus.UsedBuffer, _driver.ReadReg(VirtioMmioRegister.InterruptStatus) & VirtioInterruptStatus.UsedBuffer);
        Assert.False(_driver.NeedsReset);
    }

    [Fact]
    public void EachCallFromTheBackendIsOnePulseAndTheDriversAckClearsTheBit()
    {
        for (int round = 0; round < 2; round++)
        {
            int before = _driver.Irq.Count;
            _device.BackendQueues!.Call(0).Signal();
            Assert.True(_driver.PumpUntil(() => _driver.Irq.Count > before));
            _driver.Pump();
            Assert.Equal(before + 1, _driver.Irq.Count);
            Assert.False(_driver.Irq.Level); // a pulse: the edge-triggered pin is never left high
            Assert.Equal(VirtioInterruptStatus.UsedBuffer, _driver.ReadReg(VirtioMmioRegister.InterruptStatus));
            _driver.WriteReg(VirtioMmioRegister.InterruptAck, VirtioInterruptStatus.UsedBuffer);
            Assert.Equal(0u, _driver.ReadReg(VirtioMmioRegister.InterruptStatus));
        }
    }

    [Fact]
    public void ABackendServedSlotRaisesItsPinWithIrqLineAndAVmmServedOneKeepsIrqfd()
    {
        using var rng = new VirtioRng("/dev/urandom") { Id = "rng0" };
        Assert.True(VirtioMmioSlots.RaisesWithIrqLine(_device));
        Assert.False(VirtioMmioSlots.RaisesWithIrqLine(rng));
    }

    [Fact]
    public void AnErrorFromTheBackendStopsTheDeviceUntilReset()
    {
        _device.BackendQueues!.Error(0).Signal();
        Assert.True(_driver.PumpUntil(() => _driver.NeedsReset));
        _driver.WriteReg(VirtioMmioRegister.Status, 0);
        Assert.False(_driver.NeedsReset);
    }
}
