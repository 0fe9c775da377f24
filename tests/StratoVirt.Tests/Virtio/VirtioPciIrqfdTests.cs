using StratoVirt.Devices;
using StratoVirt.Devices.Pci;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Tests.Devices;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Transport.Pci;
using static StratoVirt.Virtio.Transport.Pci.VirtioPciRegister;

namespace StratoVirt.Tests.Virtio;

/// <summary>A backend's call eventfd on virtio-pci: bound to its queue's MSI-X vector in the hypervisor while the
/// vector is deliverable, relayed by the device's loop (into the PBA while masked) otherwise. The test plays the
/// guest on the BAR, the backend on the eventfds, and KVM with a recording <see cref="IIrqfdRoutes"/>.</summary>
[Trait("Level", "Unit")]
public sealed class VirtioPciIrqfdTests : IDisposable
{
    private const ulong VectorAddress = 0xFEE0_1000;
    private const uint VectorData = 0x51;

    /// <summary>Records the bindings of the backend's call eventfd in <see cref="Calls"/>; the function's own
    /// per-vector routes (numbered from 100) only in <see cref="Vectors"/>, by number.</summary>
    private sealed class RecordingRoutes : IIrqfdRoutes
    {
        public readonly List<string> Calls = [];
        public readonly Dictionary<uint, EventFd> Vectors = [];
        public Func<EventFd, bool> IsCall = _ => false;
        public bool Refuse;
        private uint _next = 24, _nextVector = 100;

        public uint Bind(EventFd fd, MsiMessage message)
        {
            if (Refuse) throw new SysException("KVM_SET_GSI_ROUTING", Libc.ENOSPC);
            if (!IsCall(fd))
            {
                Vectors[_nextVector] = fd;
                return _nextVector++;
            }
            Calls.Add($"bind {_next} 0x{message.Address:x}/0x{message.Data:x}");
            return _next++;
        }

        public void Retarget(uint gsi, MsiMessage message)
        {
            if (gsi < 100) Calls.Add($"retarget {gsi} 0x{message.Address:x}/0x{message.Data:x}");
        }

        public void Unbind(EventFd fd, uint gsi)
        {
            if (gsi < 100) Calls.Add($"unbind {gsi}");
            else Vectors.Remove(gsi);
        }
    }

    private readonly GuestMemory _memory = new([(0UL, 1UL << 20)], RamBacking.Default);
    private readonly EventLoop _loop = new("test");
    private readonly CountingInterruptLine _intx = new();
    private readonly RecordingMsi _msi = new();
    private readonly RecordingRoutes _routes = new();
    private readonly HalfServedDevice _device;
    private readonly VirtioPciFunction _f;
    private readonly PciGuestDriver _g;

    public VirtioPciIrqfdTests()
    {
        _device = new HalfServedDevice { Id = "half0", Loop = _loop };
        _routes.IsCall = fd => fd == _device.BackendQueues!.Call(0);
        _f = new VirtioPciFunction(_device, _memory, _intx, _msi, null, irqfds: _routes);
        _f.Attach();
        _g = new PciGuestDriver(_f);
    }

    public void Dispose()
    {
        _f.Dispose();
        _loop.Dispose();
        _memory.Dispose();
    }

    private EventFd Call => _device.BackendQueues!.Call(0);

    private ulong VectorControl => MsixTableOffset + MsixTable.EntrySize + 12;

    /// <summary>What Linux's virtio-pci does: MSI-X on, vector 1 programmed and unmasked, queue 0 on it.</summary>
    private void RouteQueueToVector1()
    {
        _g.EnableMsix();
        _g.ProgramVector(1, VectorAddress, VectorData, masked: false);
        _g.Bar(QueueSelect, 2, 0);
        _g.Bar(QueueMsixVector, 2, 1);
    }

    /// <summary>The driver's start: VERSION_1, both queues of 16 entries ready, DRIVER_OK.</summary>
    private void StartDevice()
    {
        _g.Bar(DeviceStatus, 1, VirtioStatus.Acknowledge | VirtioStatus.Driver);
        _g.Bar(DriverFeatureSelect, 4, 1);
        _g.Bar(DriverFeature, 4, 1);
        _g.Bar(DeviceStatus, 1, VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk);
        for (ulong q = 0; q < 2; q++)
        {
            _g.Bar(QueueSelect, 2, q);
            _g.Bar(QueueSize, 2, 16);
            _g.Bar(QueueDesc, 8, 0x10000 + q * 0x4000);
            _g.Bar(QueueDriver, 8, 0x11000 + q * 0x4000);
            _g.Bar(QueueDevice, 8, 0x12000 + q * 0x4000);
            _g.Bar(QueueEnable, 2, 1);
        }
        _g.Bar(DeviceStatus, 1, VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
        Assert.True(_device.Active);
    }

    private void Pump(Func<bool> until)
    {
        for (int i = 0; i < 20 && !until(); i++) _loop.RunOnce(50);
    }

    [Fact]
    public void AnUnmaskedVectorTakesTheCallEventfdAndTheLoopLeavesItAlone()
    {
        RouteQueueToVector1();
        StartDevice();
        Assert.Equal([$"bind 24 0x{VectorAddress:x}/0x{VectorData:x}"], _routes.Calls);
        Assert.True(_device.BackendQueues!.CallBound(0));
        Call.Signal();
        _loop.RunOnce(100);
        Assert.Empty(_msi.Sent); // the kernel delivers it: the VMM neither reads nor relays the signal
        Assert.Equal(1UL, Call.Drain());
    }

    [Fact]
    public void AMaskedVectorsSignalWaitsInThePbaAndGoesOutOnUnmask()
    {
        RouteQueueToVector1();
        StartDevice();
        _g.Bar(VectorControl, 4, 1); // mask
        Assert.Equal("unbind 24", _routes.Calls[^1]);
        Assert.False(_device.BackendQueues!.CallBound(0));
        Call.Signal();
        Pump(() => _g.Pba != 0);
        Assert.Equal(0b10UL, _g.Pba);
        Assert.Empty(_msi.Sent);
        Assert.Equal(0UL, Call.Drain()); // the loop took it

        _g.Bar(VectorControl, 4, 0); // unmask: the pending message goes out (on the vector's own route) and the eventfd is bound again
        Assert.Empty(_msi.Sent);
        Assert.Equal(1UL, Assert.Single(_routes.Vectors).Value.Drain());
        Assert.Equal(0UL, _g.Pba);
        Assert.Equal($"bind 25 0x{VectorAddress:x}/0x{VectorData:x}", _routes.Calls[^1]); // the recorder numbers each binding anew
        Assert.True(_device.BackendQueues.CallBound(0));
    }

    [Fact]
    public void TheFunctionMaskAndMsixOffHandTheCallBackToTheLoop()
    {
        RouteQueueToVector1();
        _g.EnableMsix(functionMask: true);
        Assert.Equal(["bind 24 0xfee01000/0x51", "unbind 24"], _routes.Calls);
        _g.EnableMsix();
        _g.WriteConfig16(_g.MsixCapability + 2, 0); // MSI-X off: INTx, which needs the ISR bit the loop sets
        Assert.Equal("unbind 25", _routes.Calls[^1]);
        StartDevice();
        Call.Signal();
        Pump(() => _intx.Level);
        Assert.True(_intx.Level);
        Assert.Equal(VirtioInterruptStatus.UsedBuffer, _g.Bar(IsrOffset, 1));
    }

    [Fact]
    public void AReprogrammedMessageRetargetsTheRouteAndResetFreesIt()
    {
        RouteQueueToVector1();
        StartDevice();
        _g.Bar(MsixTableOffset + MsixTable.EntrySize + 8, 4, 0x52); // new data, vector still unmasked
        Assert.Equal($"retarget 24 0x{VectorAddress:x}/0x52", _routes.Calls[^1]);
        _g.Bar(DeviceStatus, 1, 0); // reset: the queue's vector is none again
        Assert.Equal("unbind 24", _routes.Calls[^1]);
        Assert.False(_device.BackendQueues!.CallBound(0));
    }

    [Fact]
    public void AHostThatCannotBindLeavesTheLoopRelaying()
    {
        _routes.Refuse = true;
        RouteQueueToVector1();
        StartDevice();
        Assert.False(_device.BackendQueues!.CallBound(0));
        Call.Signal();
        Pump(() => _msi.Sent.Count > 0);
        Assert.Equal([new MsiMessage(VectorAddress, VectorData)], _msi.Sent);
    }
}
