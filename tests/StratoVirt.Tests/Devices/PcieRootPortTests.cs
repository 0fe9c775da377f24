using System.Buffers.Binary;
using StratoVirt.Devices;
using StratoVirt.Devices.Pci;
using StratoVirt.Memory;
using StratoVirt.Tests.Virtio;
using Xunit;
using static StratoVirt.Devices.Pci.PcieRootPort;

namespace StratoVirt.Tests.Devices;

/// <summary>The pcie-root-port: its type 1 header and PCI Express capability as the guest sees them through the
/// configuration mechanisms of pcie.0, type 1 routing to its secondary bus by the bus numbers the guest programs,
/// and the native hotplug state machine (plug, attention button, power off, removal) with its MSI and INTx
/// interrupts.</summary>
[Trait("Level", "Unit")]
public sealed class PcieRootPortTests
{
    private const int PortSlot = 2, PortDevfn = PortSlot << 3;

    private sealed class Endpoint(string id) : PciFunction(new PciConfigSpace(PciConfigSpace.ConventionalSize, 0x1AF4, 0x1042, 0x010000))
    {
        public override string Name => id;
        public override string QdevId => id;
    }

    private readonly IoBus _pio = new("pio"), _mmio = new("mmio");
    private readonly PciBus _root;
    private readonly PcieRootPort _port;
    private readonly CountingInterruptLine _intx = new();
    private readonly RecordingMsi _msi = new();
    private readonly List<PciFunction> _removed = [];
    private readonly PciConfigPorts _cf8;
    private readonly PciEcam _ecam;

    public PcieRootPortTests() : this(fastUnplug: false) { }

    private PcieRootPortTests(bool fastUnplug)
    {
        _root = new PciBus("pcie.0", _pio, _mmio);
        _port = new PcieRootPort("pcie.1", 5, multiFunction: true, new PciBus("pcie.1", _pio, _mmio), _intx, _msi, fastUnplug, _removed.AddRange);
        _root.Attach(PortSlot, 0, _port);
        _cf8 = new PciConfigPorts(_root, () => { });
        _ecam = new PciEcam(_root);
    }

    private uint Read(int offset, int width = 4)
    {
        Span<byte> b = stackalloc byte[4];
        _root.ReadConfig(PortDevfn, offset, b[..width]);
        return BinaryPrimitives.ReadUInt32LittleEndian(b) & (width == 4 ? uint.MaxValue : (1u << (8 * width)) - 1);
    }

    private void Write(int offset, uint value, int width = 4)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _root.WriteConfig(PortDevfn, offset, b[..width]);
    }

    private int Exp => _port.ExpressCapability;

    private ushort SlotStatusNow => (ushort)Read(Exp + SlotStatus, 2);

    private ushort SlotControlNow => (ushort)Read(Exp + SlotControl, 2);

    /// <summary>What Linux's pciehp does at probe: MSI on, then the events it wants (link changes, the attention
    /// button, command completion) and the interrupt enabled; the command's completion cleared.</summary>
    private void GuestEnablesHotplugInterrupts(bool msi = true)
    {
        if (msi)
        {
            int at = _port.MsiCapabilityOffset;
            Write(at + 4, 0xFEE0_0000);
            Write(at + 8, 0);
            Write(at + 12, 0x41, 2);
            Write(at + 2, 1, 2);
        }
        Write(Exp + SlotControl, (ushort)(SlotControlNow | LinkStateChangedEnable | AttentionButtonEnable
            | CommandCompletedEnable | HotplugInterruptEnable), 2);
        Write(Exp + SlotStatus, CommandCompleted, 2);
        _msi.Sent.Clear(); // that command's completion
    }

    /// <summary>Bus numbers 1-1 on the port, as Linux or firmware gives them.</summary>
    private void NumberBuses() => Write(PciConfigSpace.PrimaryBus, 0x0001_0100);

    [Fact]
    public void IdentifiesAsABridgeWithAPciExpressRootPortCapabilityAndMsi()
    {
        Assert.Equal(0x000C_1B36u, Read(PciConfigSpace.VendorId));
        Assert.Equal(0x0604u, Read(PciConfigSpace.ClassCode + 1, 2));
        Assert.Equal(0x81u, Read(PciConfigSpace.HeaderType, 1)); // type 1, multi-function
        Assert.Equal(1u, Read(PciConfigSpace.InterruptPin, 1));
        int first = (int)Read(PciConfigSpace.CapabilitiesPointer, 1);
        Assert.Equal(Exp, first);
        Assert.Equal(ExpressCapabilityId, (byte)Read(first, 1));
        int second = (int)Read(first + 1, 1);
        Assert.Equal(_port.MsiCapabilityOffset, second);
        Assert.Equal(MsiCapability.CapabilityId, (byte)Read(second, 1));
        Assert.Equal(0u, Read(second + 1, 1));
        Assert.Equal(0x0080u, Read(second + 2, 2)); // 64-bit, one vector, off

        Assert.Equal(0x0142u, Read(Exp + ExpFlags, 2)); // version 2, root port, slot implemented
        uint slotCap = Read(Exp + SlotCapabilities);
        Assert.Equal(0x7Bu, slotCap & 0x7F); // attention button, power controller, indicators, surprise, hot-plug capable
        Assert.Equal(5u, slotCap >> 19); // physical slot number: the port
        uint linkCap = Read(Exp + LinkCapabilities);
        Assert.Equal(5u, linkCap >> 24);
        Assert.NotEqual(0u, linkCap & (1 << 20)); // link active reporting
        // Empty at start: no card, power off, both indicators off, link down.
        Assert.Equal(0, SlotStatusNow & PresenceDetectState);
        Assert.Equal(AttentionIndicator | PowerIndicator | PowerControllerOff, SlotControlNow);
        Assert.Equal(0u, Read(Exp + LinkStatus, 2) & LinkActive);
    }

    [Fact]
    public void BridgeRegistersKeepTheirReadOnlyBits()
    {
        NumberBuses();
        Assert.Equal(0x0001_0100u, Read(PciConfigSpace.PrimaryBus) & 0x00FF_FFFF);
        Write(PciConfigSpace.IoBase, 0xFFFF, 2);
        Assert.Equal(0xF0F0u, Read(PciConfigSpace.IoBase, 2)); // 16-bit I/O: the low nibbles stay 0
        Write(PciConfigSpace.MemoryBase, 0xFFFF_FFFF);
        Assert.Equal(0xFFF0_FFF0u, Read(PciConfigSpace.MemoryBase));
        Write(PciConfigSpace.PrefetchBase, 0xFFFF_FFFF);
        Assert.Equal(0xFFF1_FFF1u, Read(PciConfigSpace.PrefetchBase)); // 64-bit prefetchable window
        Write(PciConfigSpace.PrefetchBaseUpper, 0x1234_5678);
        Assert.Equal(0x1234_5678u, Read(PciConfigSpace.PrefetchBaseUpper));
        Write(PciConfigSpace.BridgeControl, 0xFFFF, 2);
        Assert.Equal(0x007Fu, Read(PciConfigSpace.BridgeControl, 2));
        Write(PciConfigSpace.Bar0, 0xFFFF_FFFF);
        Assert.Equal(0u, Read(PciConfigSpace.Bar0)); // no BARs
    }

    [Fact]
    public void QueryPciShowsTheWindowsAndTheFunctionsBehind()
    {
        NumberBuses();
        Write(PciConfigSpace.MemoryBase, 0xC02F_C010); // 0xC010_0000-0xC02F_FFFF
        Write(PciConfigSpace.IoBase, 0x00F0, 2); // closed: base above limit
        _port.Secondary.Attach(0, 0, new Endpoint("blk1"));
        var info = Assert.Single(_root.Describe());
        Assert.Equal((PortSlot, 0, "pcie.1", (ushort)0x0604), (info.Slot, info.Function, info.QdevId, info.Class));
        var bridge = Assert.IsType<PciBridgeInfo>(info.Bridge);
        Assert.Equal((0, 1, 1), (bridge.Primary, bridge.Secondary, bridge.Subordinate));
        Assert.Equal((0xC010_0000UL, 0xC02F_FFFFUL), bridge.Memory);
        Assert.True(bridge.Io.Base > bridge.Io.Limit);
        var behind = Assert.Single(bridge.Devices);
        Assert.Equal((1, 0, "blk1"), (behind.Bus, behind.Slot, behind.QdevId));
    }

    private uint Cf8Read(int bus, int devfn, int register)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, 0x8000_0000u | (uint)bus << 16 | (uint)devfn << 8 | (uint)register);
        _cf8.Write(0, b);
        _cf8.Read(4, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    private uint EcamRead(int bus, int devfn, int register)
    {
        Span<byte> b = stackalloc byte[4];
        _ecam.Read(((ulong)(uint)bus << 20) | ((ulong)(uint)devfn << 12) | (uint)register, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    [Fact]
    public void ConfigurationCyclesReachTheSecondaryBusByTheProgrammedBusNumbers()
    {
        _port.Secondary.Attach(0, 0, new Endpoint("blk1"));
        _port.ColdPlugged();
        // Before the guest numbers the buses nothing is forwarded.
        Assert.Equal(0xFFFF_FFFFu, Cf8Read(1, 0, 0));
        Assert.Equal(0xFFFF_FFFFu, EcamRead(1, 0, 0));
        NumberBuses();
        Assert.Equal(0x1042_1AF4u, Cf8Read(1, 0, 0));
        Assert.Equal(0x1042_1AF4u, EcamRead(1, 0, 0));
        Assert.Equal(0x000C_1B36u, EcamRead(0, PortDevfn, 0));
        Assert.Equal(0xFFFF_FFFFu, EcamRead(1, 1 << 3, 0)); // only device 0 is behind a port
        Assert.Equal(0xFFFF_FFFFu, EcamRead(2, 0, 0)); // beyond the subordinate bus
        // Renumbered by the guest: the same function answers as bus 7.
        Write(PciConfigSpace.PrimaryBus, 0x0007_0700);
        Assert.Equal(0xFFFF_FFFFu, EcamRead(1, 0, 0));
        Assert.Equal(0x1042_1AF4u, Cf8Read(7, 0, 0));
        // A type 1 write lands on the function behind.
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, 0xFFFF_FFFF);
        _ecam.Write(7UL << 20 | PciConfigSpace.InterruptLine, b[..1]);
        Assert.Equal(0xFFu, EcamRead(7, 0, PciConfigSpace.InterruptLine) & 0xFF);
        // A slot the guest powers off has no link: nothing answers behind it.
        Write(Exp + SlotControl, (ushort)(SlotControlNow | PowerControllerOff), 2);
        Assert.Equal(0xFFFF_FFFFu, EcamRead(7, 0, 0));
    }

    [Fact]
    public void SlotStatusEventsAreWriteOneToClearAndPresenceIsReadOnly()
    {
        _port.Secondary.Attach(0, 0, new Endpoint("blk1"));
        _port.Plug();
        Assert.Equal(PresenceDetectState | PresenceDetectChanged | LinkStateChanged, SlotStatusNow);
        Write(Exp + SlotStatus, PresenceDetectState | LinkStateChanged, 2); // presence cannot be cleared
        Assert.Equal(PresenceDetectState | PresenceDetectChanged, SlotStatusNow);
        Write(Exp + SlotStatus, 0, 2); // zeros clear nothing
        Assert.Equal(PresenceDetectState | PresenceDetectChanged, SlotStatusNow);
        Write(Exp + SlotStatus, 0xFFFF, 2);
        Assert.Equal(PresenceDetectState, SlotStatusNow);
        // Every Slot Control write is a command that completes at once; only the defined controls stick.
        Write(Exp + SlotControl, 0xFFFF, 2);
        Assert.Equal(0x17FB, SlotControlNow);
        Assert.Equal(PresenceDetectState | CommandCompleted, SlotStatusNow);
    }

    [Fact]
    public void PlugRaisesOneMsiAndTheGuestsPowerOnKeepsTheCard()
    {
        GuestEnablesHotplugInterrupts();
        _port.Secondary.Attach(0, 0, new Endpoint("blk1"));
        _port.Plug();
        Assert.Equal(new MsiMessage(0xFEE0_0000, 0x41), Assert.Single(_msi.Sent));
        Assert.NotEqual(0u, Read(Exp + LinkStatus, 2) & LinkActive);
        Assert.False(_intx.Level); // MSI, not INTx
        // pciehp clears the events, powers the slot on and lights the power indicator.
        Write(Exp + SlotStatus, PresenceDetectChanged | LinkStateChanged, 2);
        Write(Exp + SlotControl, (ushort)(SlotControlNow & ~PowerControllerOff & ~PowerIndicator | 0x100), 2);
        Assert.Equal(2, _msi.Sent.Count); // the command completed
        Assert.True(_port.Powered);
        Assert.Empty(_removed);
        Assert.Single(_port.Secondary.Functions);
    }

    /// <summary>Plugged, powered on and all events taken, as after pciehp enabled the slot.</summary>
    private Endpoint PluggedAndEnabled(bool msi = true)
    {
        GuestEnablesHotplugInterrupts(msi);
        var card = new Endpoint("blk1");
        _port.Secondary.Attach(0, 0, card);
        _port.Plug();
        Write(Exp + SlotControl, (ushort)(SlotControlNow & ~PowerControllerOff & ~PowerIndicator | 0x100), 2);
        Write(Exp + SlotStatus, 0xFFFF, 2);
        _msi.Sent.Clear();
        return card;
    }

    [Fact]
    public void UnplugPressesTheButtonAndPowerOffRemovesTheCard()
    {
        var card = PluggedAndEnabled();
        Assert.False(_port.RequestUnplug());
        Assert.Equal(PresenceDetectState | AttentionButtonPressed, SlotStatusNow); // no fast unplug: no PDC
        Assert.Single(_msi.Sent);
        Assert.Throws<PciException>(() => _port.RequestUnplug()); // one at a time
        // The guest blinks the power indicator (a command), then after its delay powers the slot off.
        Write(Exp + SlotStatus, AttentionButtonPressed, 2);
        Write(Exp + SlotControl, (ushort)(SlotControlNow & ~PowerIndicator | 0x200), 2);
        Assert.Empty(_removed);
        Write(Exp + SlotStatus, CommandCompleted, 2);
        Write(Exp + SlotControl, (ushort)(SlotControlNow | PowerControllerOff), 2);
        Assert.Same(card, Assert.Single(_removed));
        Assert.Empty(_port.Secondary.Functions);
        Assert.Equal(PresenceDetectChanged | LinkStateChanged | CommandCompleted, SlotStatusNow);
        Assert.Equal(0u, Read(Exp + LinkStatus, 2) & LinkActive);
        Assert.False(_port.Occupied);
        Assert.False(_port.UnplugPending);
        // Writing the power-off again (the indicator next) removes nothing more.
        Write(Exp + SlotControl, (ushort)(SlotControlNow | PowerIndicator), 2);
        Assert.Single(_removed);
    }

    [Fact]
    public void AResetPowersTheSlotOffKeepsAPresentCardAndCompletesAPendingUnplug()
    {
        var card = PluggedAndEnabled();
        Write(PciConfigSpace.PrimaryBus, 0x00_02_02_00); // bus numbers 0 -> 2..2
        _port.Reset();
        Assert.Same(card, Assert.Single(_port.Secondary.Functions).Device);
        Assert.True(_port.Occupied);
        Assert.Equal(PresenceDetectState, SlotStatusNow);
        Assert.NotEqual(0, SlotControlNow & PowerControllerOff);
        Assert.Equal(0u, Read(Exp + LinkStatus, 2) & LinkActive);
        Assert.Equal(0u, Read(PciConfigSpace.PrimaryBus) & 0xFFFFFF);
        Assert.Empty(_removed);

        var pending = PluggedAfterReset();
        Assert.False(_port.RequestUnplug());
        _port.Reset(); // the guest never got to power the slot off
        Assert.Same(pending, Assert.Single(_removed));
        Assert.False(_port.Occupied);
        Assert.False(_port.UnplugPending);
        Assert.Equal(0, SlotStatusNow);
    }

    /// <summary>The card of the test above, powered again and with the guest's interrupts enabled as after a boot.</summary>
    private PciFunction PluggedAfterReset()
    {
        var card = Assert.Single(_port.Secondary.Functions).Device;
        _port.ColdPlugged();
        GuestEnablesHotplugInterrupts();
        return card;
    }

    [Fact]
    public void FastUnplugAlsoSaysTheCardIsGone()
    {
        var t = new PcieRootPortTests(fastUnplug: true);
        t.PluggedAndEnabled();
        Assert.False(t._port.RequestUnplug());
        Assert.Equal(PresenceDetectState | AttentionButtonPressed | PresenceDetectChanged, t.SlotStatusNow);
        Assert.Single(t._msi.Sent);
    }

    [Fact]
    public void UnplugOfAPoweredOffSlotIsImmediate()
    {
        var card = new Endpoint("blk1");
        _port.Secondary.Attach(0, 0, card);
        _port.Plug(); // the guest never powers it on (no pciehp)
        Assert.True(_port.RequestUnplug());
        Assert.Same(card, Assert.Single(_removed));
        Assert.Throws<PciException>(() => _port.RequestUnplug()); // empty now
    }

    [Fact]
    public void WithoutMsiTheHotplugInterruptIsALevelOnIntaUntilTheGuestClearsTheEvents()
    {
        PluggedAndEnabled(msi: false);
        Assert.False(_intx.Level);
        _port.RequestUnplug();
        Assert.True(_intx.Level);
        Assert.NotEqual(0u, Read(PciConfigSpace.Status, 2) & PciConfigSpace.StatusInterrupt);
        Assert.Empty(_msi.Sent);
        Write(Exp + SlotStatus, AttentionButtonPressed, 2);
        Assert.False(_intx.Level);
        // Interrupt Disable in the command register holds the pin down.
        Write(PciConfigSpace.Command, PciConfigSpace.CommandInterruptDisable, 2);
        Write(Exp + SlotControl, SlotControlNow, 2); // a command: CC is an enabled event
        Assert.False(_intx.Level);
    }

    [Fact]
    public void EventsWithoutTheirEnableDoNotInterrupt()
    {
        int at = _port.MsiCapabilityOffset;
        Write(at + 4, 0xFEE0_0000);
        Write(at + 2, 1, 2);
        Write(Exp + SlotControl, (ushort)(SlotControlNow | HotplugInterruptEnable), 2); // no event enabled
        _port.Secondary.Attach(0, 0, new Endpoint("blk1"));
        _port.Plug();
        Assert.Empty(_msi.Sent);
        // Enabling the link event while it is pending interrupts at once.
        Write(Exp + SlotControl, (ushort)(SlotControlNow | LinkStateChangedEnable), 2);
        Assert.Single(_msi.Sent);
    }
}
