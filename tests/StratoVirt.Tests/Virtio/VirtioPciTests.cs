using System.Buffers.Binary;
using StratoVirt.Devices;
using StratoVirt.Devices.Pci;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Tests.Devices;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Transport.Pci;
using static StratoVirt.Virtio.Transport.Pci.VirtioPciRegister;

namespace StratoVirt.Tests.Virtio;

/// <summary>The virtio-pci modern transport: configuration space and capabilities, the BAR, common configuration
/// semantics, MSI-X and INTx, driven as a guest would through virtio-rng (one queue, so two MSI-X vectors).</summary>
[Trait("Level", "Unit")]
public sealed class VirtioPciTests : IDisposable
{
    private const ulong BarAddress = 0xC000_0000;

    private sealed class RecordingDoorbells : IDoorbellBinder
    {
        public readonly List<(ulong Address, bool Bound)> Calls = [];
        public void Bind(ulong address, uint length, EventFd fd) => Calls.Add((address, true));
        public void Unbind(ulong address, uint length, EventFd fd) => Calls.Add((address, false));
    }

    private readonly GuestMemory _memory = new([(0UL, 1UL << 20)], RamBacking.Default);
    private readonly EventLoop _loop = new("test");
    private readonly CountingInterruptLine _intx = new();
    private readonly RecordingMsi _msi = new();
    private readonly RecordingDoorbells _doorbells = new();
    private readonly VirtioPciFunction _f;
    private readonly PciGuestDriver _g;

    public VirtioPciTests()
    {
        var rng = new VirtioRng("/dev/urandom") { Id = "rng0", Loop = _loop };
        _f = new VirtioPciFunction(rng, _memory, _intx, _msi, _doorbells);
        _f.Attach();
        _g = new PciGuestDriver(_f);
    }

    public void Dispose()
    {
        _f.Dispose();
        _loop.Dispose();
        _memory.Dispose();
    }

    private uint Config32(int offset) => _g.Config32(offset);

    private void WriteConfig16(int offset, ushort value) => _g.WriteConfig16(offset, value);

    private ulong Bar(ulong offset, int width) => _g.Bar(offset, width);

    private void Bar(ulong offset, int width, ulong value) => _g.Bar(offset, width, value);

    private List<(int Offset, byte Id)> Capabilities() => _g.Capabilities();

    private int MsixCapability => _g.MsixCapability;

    [Fact]
    public void IdentifiesAsANonTransitionalVirtioFunction()
    {
        Assert.Equal(0x1AF4u | (0x1044u << 16), Config32(PciConfigSpace.VendorId)); // 0x1040 + rng (4)
        Assert.Equal(1u, Config32(PciConfigSpace.RevisionId) & 0xFF);
        Assert.Equal(0x1AF4u | (0x1100u << 16), Config32(PciConfigSpace.SubsystemVendorId));
        Assert.Equal(1u, (Config32(PciConfigSpace.InterruptLine) >> 8) & 0xFF); // INTA#
        Assert.NotEqual(0u, (Config32(PciConfigSpace.Command) >> 16) & PciConfigSpace.StatusCapabilities);
    }

    [Fact]
    public void CapabilitiesNameEachStructureInTheOneBar()
    {
        var caps = Capabilities();
        Assert.Equal([VendorCapability, VendorCapability, VendorCapability, VendorCapability, VendorCapability,
            MsixTable.CapabilityId], caps.Select(c => c.Id));
        var vendor = caps.Where(c => c.Id == VendorCapability).Select(c => c.Offset).ToList();
        var found = vendor.Select(at => (Type: (byte)(Config32(at) >> 24), Bar: (byte)Config32(at + 4),
            Offset: Config32(at + 8), Length: Config32(at + 12), CapLength: (byte)(Config32(at) >> 16))).ToList();
        Assert.Equal([CommonCfg, NotifyCfg, IsrCfg, DeviceCfg, PciCfg], found.Select(c => c.Type));
        Assert.Equal(PciCfgCapabilityLength, found[4].CapLength);
        Assert.All(found, c => Assert.Equal(0, c.Bar));
        Assert.Equal((CommonOffset, (uint)CommonCfgLength), (found[0].Offset, found[0].Length));
        Assert.Equal((NotifyOffset, 4u), (found[1].Offset, found[1].Length)); // one queue
        Assert.Equal(NotifyCapabilityLength, found[1].CapLength);
        Assert.Equal(NotifyOffMultiplier, Config32(vendor[1] + 16));
        Assert.Equal((IsrOffset, 1u), (found[2].Offset, found[2].Length));
        // MSI-X: two vectors (the queue and the configuration), table and PBA in BAR 0, past the structures.
        int msix = MsixCapability;
        Assert.Equal(1u, (Config32(msix) >> 16) & 0x7FF);
        Assert.Equal(MsixTableOffset, Config32(msix + 4));
        Assert.True(Config32(msix + 8) > MsixTableOffset && (Config32(msix + 8) & 7) == 0);
        foreach (var c in found) Assert.True(c.Offset + c.Length <= _f.BarSize);
    }

    private int PciCfgCapability => Capabilities().Where(c => c.Id == VendorCapability).Select(c => c.Offset)
        .Single(at => (byte)(Config32(at) >> 24) == PciCfg);

    /// <summary>Points the PCI_CFG window at (bar, offset, length), as a driver does before it touches pci_cfg_data.</summary>
    private void Window(byte bar, uint offset, uint length)
    {
        int cap = PciCfgCapability;
        _f.WriteConfig(cap + 4, [bar]);
        _f.WriteConfig(cap + 8, BitConverter.GetBytes(offset));
        _f.WriteConfig(cap + 12, BitConverter.GetBytes(length));
    }

    /// <summary>Virtio 1.2, 4.1.4.9: reading pci_cfg_data reads cap.length bytes of the BAR at cap.offset, writing it
    /// writes them; the common configuration read and written through the window is the one the BAR holds.</summary>
    [Fact]
    public void ThePciCfgWindowReadsAndWritesTheBar()
    {
        int data = PciCfgCapability + 16;
        Window(0, (uint)NumQueues, 2);
        Assert.Equal(1u, Config32(data) & 0xFFFF); // virtio-rng: one queue
        Window(0, (uint)DeviceFeatureSelect, 4);
        _f.WriteConfig(data, BitConverter.GetBytes(1u));
        Assert.Equal(1UL, Bar((ulong)DeviceFeatureSelect, 4));
        Window(0, (uint)DeviceFeature, 4);
        Assert.Equal(Bar((ulong)DeviceFeature, 4), Config32(data)); // the high feature word, VERSION_1 among them
        Assert.NotEqual(0u, Config32(data) & 1); // VIRTIO_F_VERSION_1 is bit 32
        Window(0, (uint)DeviceStatus, 1);
        _f.WriteConfig(data, [1]); // ACKNOWLEDGE
        Assert.Equal(1UL, Bar((ulong)DeviceStatus, 1));
    }

    [Theory]
    [InlineData(2, 0x14u, 1u)] // another BAR
    [InlineData(0, 0x14u, 3u)] // a length other than 1, 2 or 4
    [InlineData(0, 0x15u, 2u)] // an offset not aligned to the length
    [InlineData(0, 0xFFFF_FFFCu, 4u)] // past the BAR
    public void APciCfgWindowOutsideTheRulesIsIgnored(byte bar, uint offset, uint length)
    {
        int data = PciCfgCapability + 16;
        Window(bar, offset, length);
        _f.WriteConfig(data, BitConverter.GetBytes(0x0101_0101u));
        Assert.Equal(0UL, Bar((ulong)DeviceStatus, 1)); // nothing was written
        Assert.Equal(0x0101_0101u, Config32(data)); // and a read returns what the window held
    }

    [Fact]
    public void TheBarIsA64BitNonPrefetchablePowerOfTwo()
    {
        Assert.Equal(0b100u, Config32(PciConfigSpace.Bar0)); // memory, 64-bit, not prefetchable
        _f.WriteConfig(PciConfigSpace.Bar0, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        ulong sized = (Config32(PciConfigSpace.Bar0) & ~0xFUL) | ((ulong)Config32(PciConfigSpace.Bar0 + 4) << 32);
        ulong size = ~sized + 1;
        Assert.Equal(_f.BarSize, size);
        Assert.Equal(0UL, size & (size - 1));
        Assert.True(size >= MsixTableOffset + PageSize);
    }

    [Fact]
    public void TheBusMapsTheBarOnlyWithMemoryDecodingAndTheDoorbellsFollowIt()
    {
        var mmio = new IoBus("mmio");
        var bus = new PciBus("pcie.0", new IoBus("pio"), mmio);
        bus.Attach(3, 0, _f);
        int devfn = 3 << 3;
        bus.WriteConfig(devfn, PciConfigSpace.Bar0, BitConverter.GetBytes(BarAddress));
        Span<byte> b = stackalloc byte[2];
        Assert.False(mmio.Read(BarAddress + NumQueues, b)); // decoding off
        Assert.Empty(_doorbells.Calls);
        bus.WriteConfig(devfn, PciConfigSpace.Command, [(byte)PciConfigSpace.CommandMemory, 0]);
        Assert.True(mmio.Read(BarAddress + NumQueues, b));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(b));
        Assert.Equal([(BarAddress + NotifyOffset, true)], _doorbells.Calls);
        bus.WriteConfig(devfn, PciConfigSpace.Command, [0, 0]);
        Assert.False(mmio.Read(BarAddress + NumQueues, b));
        Assert.Equal((BarAddress + NotifyOffset, false), _doorbells.Calls[^1]);
    }

    [Fact]
    public void FeatureWordsAreSelectedThroughTheirWindows()
    {
        ulong offered = _f.Device.OfferedFeatures;
        Bar(DeviceFeatureSelect, 4, 0);
        Assert.Equal((uint)offered, Bar(DeviceFeature, 4));
        Bar(DeviceFeatureSelect, 4, 1);
        Assert.Equal(1UL, Bar(DeviceFeatureSelect, 4));
        Assert.Equal(offered >> 32, Bar(DeviceFeature, 4));
        Bar(DeviceFeatureSelect, 4, 2);
        Assert.Equal(0UL, Bar(DeviceFeature, 4));
        Bar(DriverFeatureSelect, 4, 1);
        Bar(DriverFeature, 4, 1); // VERSION_1
        Assert.Equal(1UL, Bar(DriverFeature, 4));
        Bar(DriverFeatureSelect, 4, 0);
        Assert.Equal(0UL, Bar(DriverFeature, 4));
        Bar(DeviceFeature, 4, 0xFFFF_FFFF); // read-only
        Bar(DeviceFeatureSelect, 4, 0);
        Assert.Equal((uint)offered, Bar(DeviceFeature, 4));
    }

    [Fact]
    public void QueueRegistersFollowTheSelectedQueue()
    {
        Assert.Equal(1UL, Bar(NumQueues, 2));
        Bar(QueueSelect, 2, 0);
        Assert.Equal(256UL, Bar(QueueSize, 2));
        Bar(QueueSize, 2, 64);
        Assert.Equal(64UL, Bar(QueueSize, 2));
        Bar(QueueDesc, 8, 0x1_2345_6000);
        Bar(QueueDriver, 4, 0x7000);
        Bar(QueueDriver + 4, 4, 0x2);
        Assert.Equal(0x1_2345_6000UL, Bar(QueueDesc, 8));
        Assert.Equal(0x2_0000_7000UL, Bar(QueueDriver, 8));
        Assert.Equal(0x2UL, Bar(QueueDriver + 4, 4));
        Assert.Equal(0UL, Bar(QueueNotifyOff, 2));
        Assert.Equal(0UL, Bar(QueueEnable, 2));
        Bar(QueueEnable, 2, 1);
        Assert.Equal(1UL, Bar(QueueEnable, 2));
        Bar(QueueSelect, 2, 0xFFFF); // no such queue: reads as absent, writes change nothing
        Assert.Equal(0xFFFFUL, Bar(QueueSelect, 2));
        Assert.Equal(0UL, Bar(QueueSize, 2));
        Assert.Equal(NoVector, Bar(QueueMsixVector, 2));
        Bar(QueueSize, 2, 8);
        Bar(QueueSelect, 2, 0);
        Assert.Equal(64UL, Bar(QueueSize, 2));
    }

    [Fact]
    public void AccessesOfTheWrongWidthOrPlaceChangeNothing()
    {
        Bar(QueueSelect, 2, 0);
        Assert.Equal(0UL, Bar(NumQueues, 4)); // a 16-bit field read as 32 bits
        Bar(QueueSize, 4, 32); // a 16-bit field written as 32 bits
        Bar(QueueSize + 1, 1, 0);
        Assert.Equal(256UL, Bar(QueueSize, 2));
        Bar(QueueDesc + 2, 4, 0xDEAD); // a misaligned half
        Assert.Equal(0UL, Bar(QueueDesc, 8));
        Bar(CommonCfgLength + 8, 4, 1); // past the structure
        Bar(NotifyOffset + 4, 2, 0); // a queue that does not exist
        Bar(_f.BarSize - 4, 4, 1);
        Assert.Equal(0UL, Bar(_f.BarSize - 4, 4));
        Assert.Equal(0UL, Bar(IsrOffset + 1, 1));
    }

    [Fact]
    public void ResetReturnsStatusQueuesAndVectors()
    {
        EnableMsix();
        Bar(DeviceStatus, 1, VirtioStatus.Acknowledge | VirtioStatus.Driver);
        Bar(ConfigMsixVector, 2, 1);
        Bar(QueueSelect, 2, 0);
        Bar(QueueMsixVector, 2, 0);
        Bar(QueueSize, 2, 16);
        Assert.Equal(1UL, Bar(ConfigMsixVector, 2));
        Bar(DeviceStatus, 1, 0);
        Assert.Equal(0UL, Bar(DeviceStatus, 1));
        Assert.Equal(NoVector, Bar(ConfigMsixVector, 2));
        Assert.Equal(NoVector, Bar(QueueMsixVector, 2));
        Assert.Equal(256UL, Bar(QueueSize, 2));
    }

    [Fact]
    public void VectorsPastTheTableReadBackAsNoVector()
    {
        Bar(ConfigMsixVector, 2, 2); // the table has 0 and 1
        Assert.Equal(NoVector, Bar(ConfigMsixVector, 2));
        Bar(QueueSelect, 2, 0);
        Bar(QueueMsixVector, 2, 0x7FF);
        Assert.Equal(NoVector, Bar(QueueMsixVector, 2));
        Bar(QueueMsixVector, 2, 1);
        Assert.Equal(1UL, Bar(QueueMsixVector, 2));
    }

    private void EnableMsix(bool functionMask = false) => _g.EnableMsix(functionMask);

    private void ProgramVector(int vector, ulong address, uint data, bool masked) => _g.ProgramVector(vector, address, data, masked);

    private ulong Pba => _g.Pba;

    [Fact]
    public void MsixSendsTheQueuesVectorAndHoldsMaskedOnesPending()
    {
        EnableMsix();
        ProgramVector(0, 0xFEE0_0000, 0x41, masked: true);
        ProgramVector(1, 0xFEE0_1000, 0x42, masked: false);
        Assert.Equal(0xFEE0_0000UL, Bar(MsixTableOffset, 8));
        Assert.Equal(1UL, Bar(MsixTableOffset + 12, 4));
        Bar(QueueSelect, 2, 0);
        Bar(QueueMsixVector, 2, 0);
        Bar(ConfigMsixVector, 2, 1);

        _f.Core.SignalConfigChange();
        Assert.Equal([new MsiMessage(0xFEE0_1000, 0x42)], _msi.Sent);
        _f.Core.SignalUsed(0); // vector 0 is masked
        Assert.Single(_msi.Sent);
        Assert.Equal(1UL, Pba);
        Bar(MsixTableOffset + 12, 4, 0); // unmask: the pending message goes out
        Assert.Equal(new MsiMessage(0xFEE0_0000, 0x41), _msi.Sent[^1]);
        Assert.Equal(0UL, Pba);
        Assert.False(_intx.Level); // INTx is unused with MSI-X on
    }

    [Fact]
    public void TheFunctionMaskHoldsEveryVector()
    {
        EnableMsix(functionMask: true);
        ProgramVector(0, 0xFEE0_0000, 0x41, masked: false);
        Bar(QueueSelect, 2, 0);
        Bar(QueueMsixVector, 2, 0);
        _f.Core.SignalUsed(0);
        Assert.Empty(_msi.Sent);
        EnableMsix();
        Assert.Equal([new MsiMessage(0xFEE0_0000, 0x41)], _msi.Sent);
    }

    [Fact]
    public void HostileTableAccessesAreContained()
    {
        EnableMsix();
        Bar(MsixTableOffset + 12, 4, 0xFFFF_FFFF); // only the mask bit is writable in vector control
        Assert.Equal(1UL, Bar(MsixTableOffset + 12, 4));
        Bar(MsixTableOffset + 2, 4, 0x1234); // misaligned
        Bar(MsixTableOffset + 1, 1, 0x12); // byte-wide
        Assert.Equal(0UL, Bar(MsixTableOffset, 4));
        Bar(Config32(MsixCapability + 8) & ~7u, 4, 0xFFFF_FFFF); // the PBA is read-only
        Assert.Equal(0UL, Pba);
        Assert.Equal(0UL, Bar(MsixTableOffset + 2 * MsixTable.EntrySize, 4)); // past the table
    }

    [Fact]
    public void IntxIsALevelUntilTheIsrIsRead()
    {
        _f.Core.SignalUsed(0);
        Assert.True(_intx.Level);
        Assert.Equal(VirtioInterruptStatus.UsedBuffer, Bar(IsrOffset, 1));
        Assert.False(_intx.Level);
        Assert.Equal(0UL, Bar(IsrOffset, 1)); // read clears
        _f.Core.SignalConfigChange();
        Assert.True(_intx.Level);
        Assert.Equal(VirtioInterruptStatus.ConfigChange, Bar(IsrOffset, 1));
    }

    [Fact]
    public void InterruptDisableInTheCommandRegisterHoldsIntxBack()
    {
        WriteConfig16(PciConfigSpace.Command, PciConfigSpace.CommandInterruptDisable);
        _f.Core.SignalUsed(0);
        Assert.False(_intx.Level);
        WriteConfig16(PciConfigSpace.Command, 0);
        Assert.True(_intx.Level);
    }

    /// <summary>pcie.0 with the function at 00:03.0 and its BAR mapped, as a guest leaves it running.</summary>
    private (PciBus Bus, IoBus Mmio) OnABus()
    {
        var mmio = new IoBus("mmio");
        var bus = new PciBus("pcie.0", new IoBus("pio"), mmio);
        bus.Attach(3, 0, _f);
        bus.WriteConfig(3 << 3, PciConfigSpace.Bar0, BitConverter.GetBytes(BarAddress));
        bus.WriteConfig(3 << 3, PciConfigSpace.Command, [(byte)(PciConfigSpace.CommandMemory | PciConfigSpace.CommandBusMaster), 0]);
        return (bus, mmio);
    }

    [Fact]
    public void AMachineResetLeavesTheFunctionAsAtPowerOn()
    {
        var (bus, mmio) = OnABus();
        EnableMsix();
        ProgramVector(0, 0xFEE0_0000, 0x41, masked: false);
        Bar(DeviceStatus, 1, VirtioStatus.Acknowledge | VirtioStatus.Driver);
        Bar(QueueSelect, 2, 0);
        Bar(QueueSize, 2, 16);
        Bar(QueueMsixVector, 2, 0);
        Bar(ConfigMsixVector, 2, 1);
        Assert.Equal([(BarAddress + NotifyOffset, true)], _doorbells.Calls);

        bus.Reset();

        Assert.Equal(0u, _f.Core.Status);
        Assert.Equal(0, _f.Config.CommandValue);
        Assert.Equal(0UL, _f.Config.BarAddress(0));
        Assert.Null(bus.MappedAddress(_f, 0));
        Assert.False(mmio.Read(BarAddress + NumQueues, new byte[2]));
        Assert.Equal((BarAddress + NotifyOffset, false), _doorbells.Calls[^1]); // notifications unbound with the BAR
        Assert.Equal(0u, Config32(MsixCapability) >> 30); // MSI-X enable and function mask off
        // The registers as a fresh driver finds them.
        Assert.Equal(NoVector, Bar(ConfigMsixVector, 2));
        Bar(QueueSelect, 2, 0);
        Assert.Equal(NoVector, Bar(QueueMsixVector, 2));
        Assert.Equal(256UL, Bar(QueueSize, 2));
        Assert.Equal(1UL, Bar(MsixTableOffset + 12, 4)); // vector 0 masked again
        Assert.Equal(0UL, Bar(MsixTableOffset, 8));
        // Without MSI-X the device interrupts on INTx again, which the reset left enabled and low.
        Assert.False(_intx.Level);
        _f.Core.SignalConfigChange();
        Assert.True(_intx.Level);
        Assert.Empty(_msi.Sent);
    }

    [Fact]
    public void AMachineResetDropsAnAssertedIntxAndLiftsTheInterruptDisableBit()
    {
        var (bus, _) = OnABus();
        _f.Core.SignalConfigChange();
        Assert.True(_intx.Level);
        bus.WriteConfig(3 << 3, PciConfigSpace.Command, [0, (byte)(PciConfigSpace.CommandInterruptDisable >> 8)]);
        Assert.False(_intx.Level);
        bus.Reset();
        Assert.False(_intx.Level);
        Assert.Equal(0UL, Bar(IsrOffset, 1)); // the status was cleared with the device
        _f.Core.SignalUsed(0);
        Assert.True(_intx.Level); // INTx no longer disabled
    }
}
