using StratoVirt.Devices;
using StratoVirt.Devices.Pci;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Devices;

/// <summary>An MSI-X table with interrupt routes: each vector the guest makes deliverable gets its eventfd routed to
/// its message (bound once, retargeted when the message changes), raising it signals that eventfd instead of
/// asking the controller, masks still hold raises in the PBA, and a host without routes leaves the controller
/// sending. The routes are a recording double; the eventfds are real.</summary>
[Trait("Level", "Unit")]
public sealed class MsixVectorRouteTests : IDisposable
{
    private const ulong Address = 0xFEE0_2000;

    private sealed class RecordingRoutes : IIrqfdRoutes
    {
        public readonly List<string> Calls = [];
        public readonly Dictionary<uint, EventFd> Bound = [];
        public bool Refuse;
        private uint _next = 40;

        public uint Bind(EventFd fd, MsiMessage message)
        {
            if (Refuse) throw new SysException("KVM_SET_GSI_ROUTING", Libc.ENOSPC);
            Calls.Add($"bind {_next} 0x{message.Data:x}");
            Bound[_next] = fd;
            return _next++;
        }

        public void Retarget(uint gsi, MsiMessage message) => Calls.Add($"retarget {gsi} 0x{message.Data:x}");

        public void Unbind(EventFd fd, uint gsi)
        {
            Assert.Same(Bound[gsi], fd);
            Bound.Remove(gsi);
            Calls.Add($"unbind {gsi}");
        }
    }

    private sealed class RecordingMsi : IMsiController
    {
        public readonly List<MsiMessage> Sent = [];
        public void Send(MsiMessage message) => Sent.Add(message);
    }

    private readonly RecordingRoutes _routes = new();
    private readonly RecordingMsi _msi = new();
    private readonly PciConfigSpace _config = new(PciConfigSpace.ConventionalSize, 0x1AF4, 0x1042, 0x010000);
    private readonly MsixTable _table;
    private readonly int _control;

    public MsixVectorRouteTests()
    {
        _table = new MsixTable(3, _msi, _routes);
        _table.AddCapability(_config, 0, 0x2000, 0x3000);
        _control = _config.GetU8(PciConfigSpace.CapabilitiesPointer) + 2;
    }

    public void Dispose() => _table.Dispose();

    private void Control(bool enabled, bool functionMask = false)
    {
        _config.Write(_control, [0x00, (byte)((enabled ? 0x80 : 0) | (functionMask ? 0x40 : 0))]);
        _table.ControlWritten(_config);
    }

    /// <summary>What Linux does: address and data written while the vector is masked, then the mask cleared.</summary>
    private void Program(int vector, uint data, bool masked = false)
    {
        ulong entry = (ulong)vector * MsixTable.EntrySize;
        _table.WriteTable(entry + 12, [1, 0, 0, 0]);
        _table.WriteTable(entry, BitConverter.GetBytes(Address));
        _table.WriteTable(entry + 8, BitConverter.GetBytes(data));
        if (!masked) _table.WriteTable(entry + 12, [0, 0, 0, 0]);
    }

    private void Mask(int vector, bool masked) =>
        _table.WriteTable((ulong)vector * MsixTable.EntrySize + 12, [(byte)(masked ? 1 : 0), 0, 0, 0]);

    private ulong Signals(uint gsi) => _routes.Bound[gsi].Drain();

    [Fact]
    public void ADeliverableVectorIsBoundOnceAndRaisedThroughItsEventfd()
    {
        Control(enabled: true);
        Program(1, 0x61);
        Assert.Equal(["bind 40 0x61"], _routes.Calls);

        _table.Raise(1);
        _table.Raise(1);
        Assert.Equal(2UL, Signals(40));
        Assert.Empty(_msi.Sent);

        Mask(1, true);
        Mask(1, false); // the same message again: the route stands
        Assert.Equal(["bind 40 0x61"], _routes.Calls);
    }

    [Fact]
    public void ANewMessageRetargetsTheVectorsRoute()
    {
        Control(enabled: true);
        Program(0, 0x61);
        Program(0, 0x62);
        Assert.Equal(["bind 40 0x61", "retarget 40 0x62"], _routes.Calls);
        _table.Raise(0);
        Assert.Equal(1UL, Signals(40));
        Assert.Empty(_msi.Sent);
    }

    [Fact]
    public void AMaskedRaiseWaitsInThePbaAndTheUnmaskSignalsIt()
    {
        Control(enabled: true);
        Program(2, 0x63, masked: true);
        Assert.Empty(_routes.Calls); // nothing deliverable yet
        _table.Raise(2);
        Assert.True(_table.IsPending(2));

        Mask(2, false);
        Assert.Equal(["bind 40 0x63"], _routes.Calls);
        Assert.False(_table.IsPending(2));
        Assert.Equal(1UL, Signals(40));
        Assert.Empty(_msi.Sent);
    }

    [Fact]
    public void TheFunctionMaskHoldsRaisesUntilItIsLifted()
    {
        Control(enabled: true, functionMask: true);
        Program(0, 0x64);
        Assert.Empty(_routes.Calls);
        _table.Raise(0);
        Assert.True(_table.IsPending(0));

        Control(enabled: true);
        Assert.Equal(["bind 40 0x64"], _routes.Calls);
        Assert.Equal(1UL, Signals(40));
        Assert.False(_table.IsPending(0));
    }

    [Fact]
    public void AHostWithoutRoutesLeavesTheControllerSending()
    {
        _routes.Refuse = true;
        Control(enabled: true);
        Program(0, 0x65);
        _table.Raise(0);
        Assert.Equal([new MsiMessage(Address, 0x65)], _msi.Sent);
        Assert.Empty(_routes.Calls);
    }

    [Fact]
    public void DisposeUnbindsEveryRouteAndLaterRaisesGoToTheController()
    {
        Control(enabled: true);
        Program(0, 0x66);
        Program(1, 0x67);
        _table.Dispose();
        Assert.Equal(["bind 40 0x66", "bind 41 0x67", "unbind 40", "unbind 41"], _routes.Calls);
        Assert.Empty(_routes.Bound);

        _table.Raise(1);
        Assert.Equal([new MsiMessage(Address, 0x67)], _msi.Sent);
    }
}
