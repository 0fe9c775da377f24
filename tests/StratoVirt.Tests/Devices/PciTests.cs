using System.Buffers.Binary;
using StratoVirt.Devices;
using StratoVirt.Devices.Pci;
using StratoVirt.Memory;
using Xunit;

namespace StratoVirt.Tests.Devices;

[Trait("Level", "Unit")]
public sealed class PciTests
{
    private sealed class Registers : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data) => data.Fill(0xAB);
        public void Write(ulong offset, ReadOnlySpan<byte> data) { }
    }

    private sealed class TestFunction : PciFunction
    {
        public readonly Registers Region = new();

        public TestFunction() : base(new PciConfigSpace(PciConfigSpace.ConventionalSize, 0x1AF4, 0x1042, 0x010000))
        {
            Config.AddBar(0, PciBarKind.Memory64, 0x4000);
            Config.AddBar(2, PciBarKind.Io, 0x20);
            Config.AddBar(3, PciBarKind.Memory32, 0x1000);
        }

        public override string Name => "test0";

        public override IBusDevice? BarRegion(int index) => index == 3 ? null : Region;
    }

    private static uint Read32(PciConfigSpace c, int offset)
    {
        Span<byte> b = stackalloc byte[4];
        c.Read(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    private static void Write32(PciConfigSpace c, int offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        c.Write(offset, b);
    }

    private static uint BusRead32(PciBus bus, int devfn, int offset)
    {
        Span<byte> b = stackalloc byte[4];
        bus.ReadConfig(devfn, offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    private static void BusWrite32(PciBus bus, int devfn, int offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        bus.WriteConfig(devfn, offset, b);
    }

    [Fact]
    public void IdentityRegistersAreReadOnly()
    {
        var f = new TestFunction();
        Write32(f.Config, PciConfigSpace.VendorId, 0x12345678);
        Write32(f.Config, PciConfigSpace.RevisionId, 0xFFFFFFFF);
        Assert.Equal(0x1042_1AF4u, Read32(f.Config, PciConfigSpace.VendorId));
        Assert.Equal(0x0100_0000u, Read32(f.Config, PciConfigSpace.RevisionId));
    }

    [Fact]
    public void CommandTakesOnlyItsDefinedBits()
    {
        var f = new TestFunction();
        Span<byte> all = [0xFF, 0xFF];
        f.Config.Write(PciConfigSpace.Command, all);
        Assert.Equal(0x0547, f.Config.CommandValue);
    }

    [Fact]
    public void StatusErrorBitsClearByWritingOnes()
    {
        var f = new TestFunction();
        f.Config.SetU16(PciConfigSpace.Status, PciConfigSpace.StatusErrors | PciConfigSpace.StatusCapabilities);
        Span<byte> zero = [0, 0];
        f.Config.Write(PciConfigSpace.Status, zero);
        Assert.Equal(PciConfigSpace.StatusErrors | PciConfigSpace.StatusCapabilities, f.Config.GetU16(PciConfigSpace.Status));
        Span<byte> clearOne = [0, 0x20]; // bit 13, received master abort
        f.Config.Write(PciConfigSpace.Status, clearOne);
        Assert.Equal((PciConfigSpace.StatusErrors & ~(1 << 13)) | PciConfigSpace.StatusCapabilities,
            f.Config.GetU16(PciConfigSpace.Status));
        Span<byte> all = [0xFF, 0xFF];
        f.Config.Write(PciConfigSpace.Status, all); // the capability-list bit is read-only
        Assert.Equal(PciConfigSpace.StatusCapabilities, f.Config.GetU16(PciConfigSpace.Status));
    }

    [Fact]
    public void BarsAnswerTheSizingProbeWithTheirSizeAndType()
    {
        var f = new TestFunction();
        for (int i = 0; i < PciConfigSpace.BarCount; i++) Write32(f.Config, PciConfigSpace.Bar0 + 4 * i, 0xFFFFFFFF);
        Assert.Equal(0xFFFF_C004u, Read32(f.Config, PciConfigSpace.Bar0)); // 16 KiB, 64-bit memory
        Assert.Equal(0xFFFF_FFFFu, Read32(f.Config, PciConfigSpace.Bar0 + 4)); // upper half
        Assert.Equal(0xFFFF_FFE1u, Read32(f.Config, PciConfigSpace.Bar0 + 8)); // 32 ports
        Assert.Equal(0xFFFF_F000u, Read32(f.Config, PciConfigSpace.Bar0 + 12)); // 4 KiB, 32-bit memory
        Assert.Equal(0u, Read32(f.Config, PciConfigSpace.Bar0 + 16)); // undeclared BARs stay zero
        Write32(f.Config, PciConfigSpace.Bar0, 0xC000_2000);
        Write32(f.Config, PciConfigSpace.Bar0 + 4, 0x1);
        Assert.Equal(0x1_C000_0000UL, f.Config.BarAddress(0)); // bits below the size are dropped
    }

    [Fact]
    public void CapabilitiesAreChainedFromThePointer()
    {
        var f = new TestFunction();
        int first = f.Config.AddCapability(0x11, 12);
        int second = f.Config.AddCapability(0x09, 5);
        Assert.Equal(0x40, first);
        Assert.Equal(0x4C, second);
        Span<byte> b = stackalloc byte[2];
        f.Config.Read(PciConfigSpace.CapabilitiesPointer, b[..1]);
        Assert.Equal(0x40, b[0]);
        f.Config.Read(first, b);
        Assert.Equal([0x11, 0x4C], b.ToArray());
        f.Config.Read(second, b);
        Assert.Equal([0x09, 0x00], b.ToArray());
        Assert.NotEqual(0, f.Config.GetU16(PciConfigSpace.Status) & PciConfigSpace.StatusCapabilities);
        Assert.Throws<InvalidOperationException>(() => f.Config.AddCapability(0x10, 0xC0));
    }

    [Fact]
    public void AccessesOutsideTheSpaceReadOnesAndWriteNothing()
    {
        var f = new TestFunction();
        Assert.Equal(0xFFFF_FFFFu, Read32(f.Config, 0xFE));
        Write32(f.Config, 0x3FE, 0);
        Write32(f.Config, -1, 0);
        Assert.Equal(0x1042_1AF4u, Read32(f.Config, 0));
    }

    [Fact]
    public void BusMapsBarsWhenDecodingIsEnabledAndFollowsMoves()
    {
        var pio = new IoBus("pio");
        var mmio = new IoBus("mmio");
        var bus = new PciBus("pcie.0", pio, mmio);
        var f = new TestFunction();
        bus.Attach(3, 0, f);
        int devfn = 3 << 3;
        BusWrite32(bus, devfn, PciConfigSpace.Bar0, 0xC000_0000);
        BusWrite32(bus, devfn, PciConfigSpace.Bar0 + 8, 0xC040);
        Assert.Null(bus.MappedAddress(f, 0)); // decoding is off

        BusWrite32(bus, devfn, PciConfigSpace.Command, PciConfigSpace.CommandIo | PciConfigSpace.CommandMemory);
        Assert.Equal(0xC000_0000UL, bus.MappedAddress(f, 0));
        Assert.Equal(0xC040UL, bus.MappedAddress(f, 2));
        Span<byte> b = stackalloc byte[4];
        Assert.True(mmio.Read(0xC000_3FFC, b));
        Assert.True(pio.Read(0xC05C, b));

        BusWrite32(bus, devfn, PciConfigSpace.Bar0, 0xD000_0000);
        Assert.False(mmio.Read(0xC000_0000, b));
        Assert.True(mmio.Read(0xD000_0000, b));

        BusWrite32(bus, devfn, PciConfigSpace.Command, 0);
        Assert.False(mmio.Read(0xD000_0000, b));
        Assert.False(pio.Read(0xC040, b));
    }

    [Fact]
    public void ClashingBarStaysUnmapped()
    {
        var mmio = new IoBus("mmio");
        var bus = new PciBus("pcie.0", new IoBus("pio"), mmio);
        mmio.Register(0xC000_0000, 0x1000, new Registers());
        var f = new TestFunction();
        bus.Attach(3, 0, f);
        BusWrite32(bus, 3 << 3, PciConfigSpace.Bar0, 0xC000_0000);
        BusWrite32(bus, 3 << 3, PciConfigSpace.Command, PciConfigSpace.CommandMemory);
        Assert.Null(bus.MappedAddress(f, 0));
    }

    [Fact]
    public void AddressesAreCheckedAndEmptyFunctionsReadAllOnes()
    {
        var bus = new PciBus("pcie.0", new IoBus("pio"), new IoBus("mmio"));
        bus.Attach(3, 0, new TestFunction());
        Assert.Equal("bus pcie.0: address 0x3.0 is already used by test0",
            Assert.Throws<PciException>(() => bus.Attach(3, 0, new TestFunction())).Message);
        Assert.Equal("bus pcie.0: slot 0x20 is out of range (0x0 to 0x1f)",
            Assert.Throws<PciException>(() => bus.Attach(32, 0, new TestFunction())).Message);
        Assert.Equal(0xFFFF_FFFFu, BusRead32(bus, 4 << 3, 0));
    }

    [Fact]
    public void FunctionsAreFoundByAddressAndTheFirstByTheLowest()
    {
        var bus = new PciBus("pcie.0", new IoBus("pio"), new IoBus("mmio"));
        Assert.Null(bus.FirstFunction);
        var high = new TestFunction();
        var low = new TestFunction();
        bus.Attach(5, 1, high);
        bus.Attach(2, 3, low);
        Assert.Same(low, bus.FirstFunction);
        Assert.Same(high, bus.FunctionAt(5, 1));
        Assert.Null(bus.FunctionAt(5, 0));
        Assert.Null(bus.FunctionAt(32, 0));
        Assert.Null(bus.FunctionAt(5, 8));
        Assert.Null(bus.FunctionAt(-1, 0));
    }

    [Fact]
    public void ConfigPortsAndEcamReachTheSameFunction()
    {
        var bus = new PciBus("pcie.0", new IoBus("pio"), new IoBus("mmio"));
        bus.Attach(0, 0, new Q35HostBridge(0xB000_0000));
        bus.Attach(Ich9LpcBridge.Slot, 0, new Ich9LpcBridge(0x600));
        int resets = 0;
        var ports = new PciConfigPorts(bus, () => resets++);
        var ecam = new PciEcam(bus);
        Span<byte> b = stackalloc byte[4];

        BinaryPrimitives.WriteUInt32LittleEndian(b, 0x8000_0000u | (0x1Fu << 11) | 0x40);
        ports.Write(0, b);
        ports.Read(4, b);
        Assert.Equal(0x601u, BinaryPrimitives.ReadUInt32LittleEndian(b)); // PMBASE, I/O
        BinaryPrimitives.WriteUInt32LittleEndian(b, 0x8000_0000u);
        ports.Write(0, b);
        ports.Read(4, b);
        Assert.Equal(0x29C0_8086u, BinaryPrimitives.ReadUInt32LittleEndian(b));
        ports.Read(6, b[..2]); // a 16-bit read of the upper half
        Assert.Equal(0x29C0, BinaryPrimitives.ReadUInt16LittleEndian(b));
        BinaryPrimitives.WriteUInt32LittleEndian(b, 0x0000_0000u); // enable bit clear
        ports.Write(0, b);
        ports.Read(4, b);
        Assert.Equal(0xFFFF_FFFFu, BinaryPrimitives.ReadUInt32LittleEndian(b));

        ecam.Read((0x1FUL << 15) | 0, b);
        Assert.Equal(0x2918_8086u, BinaryPrimitives.ReadUInt32LittleEndian(b));
        ecam.Read(Q35HostBridge.PciExBar, b);
        Assert.Equal(0xB000_0001u, BinaryPrimitives.ReadUInt32LittleEndian(b));
        ecam.Read(1UL << 20, b); // bus 1 does not exist
        Assert.Equal(0xFFFF_FFFFu, BinaryPrimitives.ReadUInt32LittleEndian(b));

        Span<byte> one = [0x02];
        ports.Write(1, one); // SYS_RST alone does not reset
        Assert.Equal(0, resets);
        one[0] = 0x06;
        ports.Write(1, one);
        Assert.Equal(1, resets);
    }

    // ---- a machine reset ----

    [Fact]
    public void AResetClearsWhatTheGuestWroteKeepsWhatTheDeviceDeclaredAndUnmapsTheBars()
    {
        var pio = new IoBus("pio");
        var mmio = new IoBus("mmio");
        var bus = new PciBus("pcie.0", pio, mmio);
        var f = new TestFunction();
        f.Config.SetU8(PciConfigSpace.InterruptPin, 1);
        int capability = f.Config.AddCapability(0x11, 12);
        bus.Attach(3, 0, f);
        const int Devfn = 3 << 3;
        BusWrite32(bus, Devfn, PciConfigSpace.Bar0, 0xC000_0000);
        BusWrite32(bus, Devfn, PciConfigSpace.Bar0 + 4, 0x1);
        BusWrite32(bus, Devfn, PciConfigSpace.Bar0 + 8, 0xC100);
        BusWrite32(bus, Devfn, PciConfigSpace.InterruptLine, 0x10B);
        f.Config.SetU16(PciConfigSpace.Status, PciConfigSpace.StatusCapabilities | (1 << 13)); // a master abort seen
        BusWrite32(bus, Devfn, PciConfigSpace.Command, PciConfigSpace.CommandIo | PciConfigSpace.CommandMemory | PciConfigSpace.CommandBusMaster);
        Assert.Equal(0x1_C000_0000UL, bus.MappedAddress(f, 0));
        Assert.Equal(0xC100UL, bus.MappedAddress(f, 2));

        bus.Reset();

        Assert.Equal((uint)PciConfigSpace.StatusCapabilities << 16, BusRead32(bus, Devfn, PciConfigSpace.Command)); // command 0, errors gone
        Assert.Equal(0b100u, BusRead32(bus, Devfn, PciConfigSpace.Bar0)); // 64-bit memory, no address
        Assert.Equal(0u, BusRead32(bus, Devfn, PciConfigSpace.Bar0 + 4));
        Assert.Equal(1u, BusRead32(bus, Devfn, PciConfigSpace.Bar0 + 8)); // the I/O indicator, no address
        Assert.Equal(0x100u, BusRead32(bus, Devfn, PciConfigSpace.InterruptLine)); // pin INTA# stays, line 0
        Assert.Equal(0x1042_1AF4u, BusRead32(bus, Devfn, PciConfigSpace.VendorId));
        Assert.Equal((uint)capability, BusRead32(bus, Devfn, PciConfigSpace.CapabilitiesPointer));
        Assert.Null(bus.MappedAddress(f, 0));
        Assert.Null(bus.MappedAddress(f, 2));
        Assert.False(mmio.Read(0x1_C000_0000, new byte[4]));
        Assert.False(pio.Read(0xC100, new byte[4]));
        BusWrite32(bus, Devfn, PciConfigSpace.Bar0, 0xFFFF_FFFF); // still declared: the sizing probe answers
        Assert.Equal(0xFFFF_C004u, BusRead32(bus, Devfn, PciConfigSpace.Bar0));
    }

    private sealed class CountingMsi : IMsiController
    {
        public int Sent;
        public void Send(MsiMessage message) => Sent++;
    }

    [Fact]
    public void AResetTurnsMsixOffMasksEveryVectorAndDropsPendingOnes()
    {
        var msi = new CountingMsi();
        var config = new PciConfigSpace(PciConfigSpace.ConventionalSize, 0x1AF4, 0x1042, 0x010000);
        var table = new MsixTable(2, msi);
        table.AddCapability(config, 0, 0x2000, 0x3000);
        int control = config.GetU8(PciConfigSpace.CapabilitiesPointer) + 2;
        config.Write(control, [0x00, 0x80]); // MSI-X on
        table.ControlWritten(config);
        table.WriteTable(0, [0x00, 0x00, 0xE0, 0xFE, 0, 0, 0, 0]);
        table.WriteTable(8, [0x41, 0, 0, 0, 1, 0, 0, 0]); // data 0x41, masked
        table.Raise(0);
        Assert.True(table.IsPending(0));

        config.Reset();
        table.Reset();

        Assert.False(table.Enabled);
        Assert.Equal(0, config.GetU16(control) & 0xC000); // enable and function mask read 0
        Assert.False(table.IsPending(0));
        var entry = new byte[16];
        table.ReadTable(0, entry.AsSpan(0, 8));
        table.ReadTable(8, entry.AsSpan(8, 8));
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 }, entry); // zero message, masked
        config.Write(control, [0x00, 0x80]);
        table.ControlWritten(config);
        table.WriteTable(12, [0, 0, 0, 0]); // unmasked: nothing was left pending to send
        Assert.Equal(0, msi.Sent);
    }

    [Fact]
    public void TheConfigurationPortsForgetTheirAddressOnReset()
    {
        var bus = new PciBus("pcie.0", new IoBus("pio"), new IoBus("mmio"));
        bus.Attach(0, 0, new Q35HostBridge(0xB000_0000));
        int resets = 0;
        var ports = new PciConfigPorts(bus, () => resets++);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, 0x8000_0000);
        ports.Write(0, b);
        ports.Read(4, b);
        Assert.Equal(0x29C0_8086u, BinaryPrimitives.ReadUInt32LittleEndian(b));
        ports.Reset();
        ports.Read(0, b);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(b));
        ports.Read(4, b);
        Assert.Equal(0xFFFF_FFFFu, BinaryPrimitives.ReadUInt32LittleEndian(b)); // no function selected
        Assert.Equal(0, resets);
    }
}
