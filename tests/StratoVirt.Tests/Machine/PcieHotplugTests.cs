using System.Buffers.Binary;
using StratoVirt.Devices.Pci;
using StratoVirt.Machine;
using StratoVirt.Tests.Devices;
using StratoVirt.Tests.Virtio;
using Xunit;

namespace StratoVirt.Tests.Machine;

/// <summary>q35's device_add/device_del over its root ports, without KVM: the requests it refuses (each a one-line
/// reason that QMP returns as its GenericError), and an unplug from the attention button to DEVICE_DELETED once the
/// guest powers the slot off, raised from the main loop.</summary>
[Trait("Level", "Unit")]
public sealed class PcieHotplugTests : IDisposable
{
    private const int PortSlot = 2;

    private sealed class Card(string id) : PciFunction(new PciConfigSpace(PciConfigSpace.ConventionalSize, 0x1AF4, 0x1042, 0x010000))
    {
        public override string Name => id;
        public override string QdevId => id;
    }

    private readonly VirtualMachine _vm = new(new MachineConfig { KernelPath = "none", Seccomp = false });
    private readonly VirtioPciDevices _devices = new();
    private readonly PcieHotplug _hotplug;
    private readonly PciBus _root;
    private readonly PcieRootPort _port;
    private readonly List<MachineEvent> _events = [];

    public PcieHotplugTests()
    {
        _hotplug = new PcieHotplug(_vm, _devices);
        _root = new PciBus("pcie.0", _vm.Pio, _vm.Mmio);
        _port = new PcieRootPort("pcie.1", 1, false, new PciBus("pcie.1", _vm.Pio, _vm.Mmio), new CountingInterruptLine(),
            new RecordingMsi(), fastUnplug: false, _hotplug.Removed);
        _root.Attach(PortSlot, 0, _port);
        _hotplug.AddPort(_port, PortSlot);
        _vm.Events += _events.Add;
    }

    public void Dispose()
    {
        _hotplug.Dispose();
        _devices.Dispose();
        _vm.Dispose();
    }

    private static DeviceAddSpec Blk(string? bus, int? slot = 0, string driver = PcieHotplug.BlockDriver) =>
        new("blk1", HotplugKind.Block, "d1", slot, null, null) { Driver = driver, Bus = bus };

    private string Refusal(Action request) => Assert.Throws<HotplugException>(request).Message;

    [Fact]
    public void DeviceAddRefusesPcie0UnknownBusesBadAddressesAndOtherDrivers()
    {
        Assert.Contains("pcie.0 takes no hot-plugged devices", Refusal(() => _hotplug.DeviceAdd(Blk(null))));
        Assert.Contains("pcie.0 takes no hot-plugged devices", Refusal(() => _hotplug.DeviceAdd(Blk("pcie.0"))));
        Assert.Equal("device_add 'blk1': no such bus 'pcie.9' (the q35 machine's root ports: pcie.1)",
            Refusal(() => _hotplug.DeviceAdd(Blk("pcie.9"))));
        Assert.Equal("device_add 'blk1': addr 0x3: a device behind root port 'pcie.1' sits at slot 0 (addr 0x0)",
            Refusal(() => _hotplug.DeviceAdd(Blk("pcie.1", 3))));
        Assert.Contains("virtio-blk-mmio cannot be hotplugged into the q35 machine (only virtio-blk-pci, virtio-net-pci and vhost-user-blk-pci)",
            Refusal(() => _hotplug.DeviceAdd(Blk("pcie.1", driver: "virtio-blk-mmio"))));
        Assert.Equal("Device id 'pcie.1' is already in use",
            Refusal(() => _hotplug.DeviceAdd(Blk("pcie.1") with { Id = "pcie.1" })));
        Assert.Equal("No block device node 'd1' (add it first)", Refusal(() => _hotplug.DeviceAdd(Blk("pcie.1"))));
        Assert.Empty(_port.Secondary.Functions);
    }

    private static DeviceAddSpec VhostUserBlk(string chardev, string id = "vub1") =>
        new(id, HotplugKind.VhostUserBlock, chardev, 0, null, null) { Driver = PcieHotplug.VhostUserBlockDriver, Bus = "pcie.1" };

    [Fact]
    public void ChardevsAreStoredOnceAndRemovedOnce()
    {
        _hotplug.ChardevAdd(new ChardevSpec("c1", "/tmp/none.sock"));
        Assert.Equal("Chardev \"c1\" has been added", Refusal(() => _hotplug.ChardevAdd(new ChardevSpec("c1", "/tmp/other.sock"))));
        _hotplug.ChardevRemove("c1");
        Assert.Equal("Chardev c1 not found", Refusal(() => _hotplug.ChardevRemove("c1")));
    }

    [Fact]
    public void VhostUserBlkPciRefusesUnsharedRamAnUnknownChardevAndABackendNobodyServes()
    {
        _vm.Memory = new StratoVirt.Memory.GuestMemory([(0UL, 1UL << 20)], StratoVirt.Memory.RamBacking.Default);
        _hotplug.ChardevAdd(new ChardevSpec("c1", "/tmp/stratovirt-nobody-listens.sock"));
        Assert.Contains("needs guest RAM shared with its backend", Refusal(() => _hotplug.DeviceAdd(VhostUserBlk("c1"))));
        _vm.Memory.Dispose();
        _vm.Memory = new StratoVirt.Memory.GuestMemory([(0UL, 1UL << 20)],
            new StratoVirt.Memory.RamBacking { Kind = StratoVirt.Memory.RamBackingKind.Memfd, Shared = true });
        Assert.Equal("Failed to add vhost user blk pci: Chardev: \"nope\" not found for vhost user blk",
            Refusal(() => _hotplug.DeviceAdd(VhostUserBlk("nope"))));
        Assert.Contains("vhost-user socket /tmp/stratovirt-nobody-listens.sock: nobody listens on it",
            Refusal(() => _hotplug.DeviceAdd(VhostUserBlk("c1"))));
        Assert.Empty(_port.Secondary.Functions);
        _hotplug.ChardevRemove("c1"); // no device took it
        _vm.Memory.Dispose();
    }

    [Fact]
    public void DeviceAddRefusesAnOccupiedPort()
    {
        _port.Secondary.Attach(0, 0, new Card("blk0"));
        _port.ColdPlugged();
        Assert.Equal("device_add 'blk1': root port 'pcie.1' is occupied by 'blk0'", Refusal(() => _hotplug.DeviceAdd(Blk("pcie.1"))));
    }

    private void GuestWritesSlotControl(Func<ushort, ushort> change)
    {
        int at = _port.ExpressCapability + PcieRootPort.SlotControl;
        Span<byte> b = stackalloc byte[2];
        _root.ReadConfig(PortSlot << 3, at, b);
        BinaryPrimitives.WriteUInt16LittleEndian(b, change(BinaryPrimitives.ReadUInt16LittleEndian(b)));
        _root.WriteConfig(PortSlot << 3, at, b);
    }

    [Fact]
    public void DeviceDelPressesTheButtonAndDeviceDeletedFollowsThePowerOff()
    {
        _port.Secondary.Attach(0, 0, new Card("blk0"));
        _port.ColdPlugged();
        Assert.Equal("Device 'nope' not found", Refusal(() => _hotplug.DeviceDel("nope")));
        Assert.Equal("Device 'pcie.1' is a pcie-root-port, which cannot be unplugged", Refusal(() => _hotplug.DeviceDel("pcie.1")));

        _hotplug.DeviceDel("blk0");
        Assert.True(_port.UnplugPending);
        Assert.Contains("an unplug is already in progress", Refusal(() => _hotplug.DeviceDel("blk0")));
        _vm.MainLoop.RunOnce(0);
        Assert.Empty(_events); // not before the guest lets go

        GuestWritesSlotControl(c => (ushort)(c | PcieRootPort.PowerControllerOff));
        Assert.Empty(_port.Secondary.Functions);
        Assert.Empty(_events); // raised on the main loop, not on the vCPU
        _vm.MainLoop.RunOnce(1000);
        Assert.Equal(new MachineEvent.DeviceDeleted("blk0", "/machine/peripheral/blk0"), Assert.Single(_events));
        Assert.Equal("Device 'blk0' not found", Refusal(() => _hotplug.DeviceDel("blk0")));
    }
}
