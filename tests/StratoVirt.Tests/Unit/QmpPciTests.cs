using System.Text;
using System.Text.Json;
using StratoVirt.Devices.Pci;
using StratoVirt.Memory;
using StratoVirt.Qmp;
using StratoVirt.Sys;
using StratoVirt.Tests.Devices;
using StratoVirt.Tests.Virtio;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Transport.Pci;

namespace StratoVirt.Tests.Unit;

/// <summary>query-pci's return in QEMU's shape, from a q35 root bus with the chipset and a virtio-rng-pci function
/// whose BAR the guest placed and enabled.</summary>
[Trait("Level", "Unit")]
public sealed class QmpPciTests : IDisposable
{
    private const ulong BarAddress = 0xC000_0000;

    private readonly GuestMemory _memory = new([(0UL, 1UL << 20)], RamBacking.Default);
    private readonly EventLoop _loop = new("test");
    private readonly VirtioPciFunction _rng;
    private readonly PciBus _bus = new("pcie.0", new IoBus("pio"), new IoBus("mmio"));

    public QmpPciTests()
    {
        _rng = new VirtioPciFunction(new VirtioRng("/dev/urandom") { Id = "rng0", Loop = _loop }, _memory,
            new CountingInterruptLine(), new RecordingMsi(), null);
        _bus.Attach(0, 0, new Q35HostBridge(0xB000_0000));
        _bus.Attach(3, 0, _rng);
        _bus.Attach(Ich9LpcBridge.Slot, 0, new Ich9LpcBridge(0x600));
    }

    public void Dispose()
    {
        _rng.Dispose();
        _loop.Dispose();
        _memory.Dispose();
    }

    private JsonElement Query() => JsonDocument.Parse(Text(QmpPciInfo.FromRootBus(_bus.Describe()))).RootElement;

    private static string Text(QmpPciInfo[] buses) => Encoding.UTF8.GetString(QmpJson.ToUtf8(w => QmpJson.WriteArray(w, buses)));

    private static JsonElement Device(JsonElement buses, int slot) =>
        buses[0].GetProperty("devices").EnumerateArray().Single(d => d.GetProperty("slot").GetInt32() == slot);

    [Fact]
    public void TheRootBusListsEachFunctionWithItsIdentityAndClass()
    {
        var buses = Query();
        Assert.Equal(1, buses.GetArrayLength());
        Assert.Equal(0, buses[0].GetProperty("bus").GetInt32());
        var devices = buses[0].GetProperty("devices").EnumerateArray().ToList();
        Assert.Equal([(0, 0), (3, 0), (0x1F, 0)], devices.Select(d => (d.GetProperty("slot").GetInt32(), d.GetProperty("function").GetInt32())));
        Assert.All(devices, d => Assert.Equal(0, d.GetProperty("bus").GetInt32()));

        var mch = devices[0];
        Assert.Equal("""{"desc":"Host bridge","class":1536}""", mch.GetProperty("class_info").GetRawText());
        Assert.Equal(0x8086, mch.GetProperty("id").GetProperty("vendor").GetInt32());
        Assert.Equal(0x29C0, mch.GetProperty("id").GetProperty("device").GetInt32());
        Assert.Equal("", mch.GetProperty("qdev_id").GetString());
        Assert.Equal(0, mch.GetProperty("irq_pin").GetInt32());
        Assert.False(mch.TryGetProperty("irq", out _));
        Assert.Equal("ISA bridge", devices[2].GetProperty("class_info").GetProperty("desc").GetString());

        var rng = devices[1];
        Assert.Equal("rng0", rng.GetProperty("qdev_id").GetString());
        Assert.Equal("""{"device":4164,"vendor":6900,"subsystem":4352,"subsystem-vendor":6900}""", rng.GetProperty("id").GetRawText());
        Assert.Equal("""{"class":255}""", rng.GetProperty("class_info").GetRawText()); // unclassified: no desc
        Assert.Equal(1, rng.GetProperty("irq_pin").GetInt32());
        Assert.Equal(0, rng.GetProperty("irq").GetInt32());
    }

    [Fact]
    public void ABarReportsItsAddressOnlyWhileItDecodes()
    {
        var region = Device(Query(), 3).GetProperty("regions").EnumerateArray().Single();
        Assert.Equal($$"""{"bar":0,"type":"memory","address":{{ulong.MaxValue}},"size":{{_rng.BarSize}},"prefetch":false,"mem_type_64":true}""",
            region.GetRawText());

        int devfn = 3 << 3;
        _bus.WriteConfig(devfn, PciConfigSpace.Bar0, BitConverter.GetBytes(BarAddress));
        _bus.WriteConfig(devfn, PciConfigSpace.InterruptLine, [10]);
        Assert.Equal(ulong.MaxValue, Device(Query(), 3).GetProperty("regions")[0].GetProperty("address").GetUInt64()); // decoding off
        _bus.WriteConfig(devfn, PciConfigSpace.Command, [(byte)PciConfigSpace.CommandMemory, 0]);
        var rng = Device(Query(), 3);
        Assert.Equal(BarAddress, rng.GetProperty("regions")[0].GetProperty("address").GetUInt64());
        Assert.Equal(10, rng.GetProperty("irq").GetInt32());
    }

    [Fact]
    public void AMachineWithoutPciHasNoBus() =>
        Assert.Equal("[]", Text(QmpPciInfo.FromRootBus([])));

    [Fact]
    public void ARootPortShowsItsBridgeMemberWithTheFunctionsBehind()
    {
        var port = new PcieRootPort("pcie.1", 1, false, new PciBus("pcie.1", new IoBus("pio"), new IoBus("mmio")),
            new CountingInterruptLine(), new RecordingMsi(), fastUnplug: false, _ => { });
        _bus.Attach(2, 0, port);
        _bus.WriteConfig(2 << 3, PciConfigSpace.PrimaryBus, [0, 1, 1]);
        _bus.WriteConfig(2 << 3, PciConfigSpace.IoBase, [0xF0, 0x00, 0, 0, 0x10, 0xC0, 0x2F, 0xC0]);
        port.Secondary.Attach(0, 0, new Q35HostBridge(0)); // any function will do
        var entry = Device(Query(), 2);
        Assert.Equal("""{"desc":"PCI bridge","class":1540}""", entry.GetProperty("class_info").GetRawText());
        Assert.Equal("pcie.1", entry.GetProperty("qdev_id").GetString());
        var bridge = entry.GetProperty("pci_bridge");
        Assert.Equal("{\"number\":0,\"secondary\":1,\"subordinate\":1,\"io_range\":{\"base\":61440,\"limit\":4095}," +
            "\"memory_range\":{\"base\":3222274048,\"limit\":3224371199},\"prefetchable_range\":{\"base\":0,\"limit\":1048575}}",
            bridge.GetProperty("bus").GetRawText());
        var behind = bridge.GetProperty("devices").EnumerateArray().Single();
        Assert.Equal((1, 0, 0), (behind.GetProperty("bus").GetInt32(), behind.GetProperty("slot").GetInt32(), behind.GetProperty("function").GetInt32()));
        Assert.False(Device(Query(), 3).TryGetProperty("pci_bridge", out _));
    }
}
