using StratoVirt.Cli;
using StratoVirt.Devices.Options;
using StratoVirt.Devices.Pci;
using StratoVirt.Machine;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Devices.Net;

namespace StratoVirt.Tests.Unit;

/// <summary>-device virtio-*-pci on the q35 machine: addresses, buses, multifunction, and which machine takes which.</summary>
[Trait("Level", "Unit")]
public sealed class PciDeviceOptionTests
{
    private static MachineConfig Parse(string machine, params string[] devices) =>
        Options.FromArgs(ArgParser.Parse(["-machine", machine, "-kernel", "/k", .. devices], Options.Specs), 24UL << 30).Machine;

    private static string Error(string machine, params string[] devices) =>
        Assert.Throws<UsageException>(() => Parse(machine, devices)).Message;

    [Fact]
    public void PciDevicesTakeTheirMmioOptionsAndAnAddress()
    {
        var m = Parse("q35",
            "-drive", "id=d,file=/img",
            "-device", "virtio-blk-pci,drive=d,id=blk0,bus=pcie.0,addr=0x3,bootindex=1,serial=s1",
            "-netdev", "tap,id=n,ifname=tap0",
            "-device", "virtio-net-pci,netdev=n,id=net0,addr=0x4.0,multifunction=on,mac=52:54:00:12:34:56",
            "-chardev", "socket,id=c,path=/tmp/c.sock,server,nowait",
            "-device", "virtio-serial-pci,id=ser0,addr=0x5",
            "-device", "virtconsole,chardev=c,id=con0");
        var blk = Assert.IsType<BlockDeviceConfig>(m.Devices.Single(d => d.Id == "blk0"));
        Assert.Equal(new PciPlacement("pcie.0", 3, 0, false), blk.Pci);
        Assert.Equal("s1", blk.Serial);
        Assert.Equal(new PciPlacement("pcie.0", 4, 0, true), Assert.IsType<NetDeviceConfig>(m.Devices.Single(d => d.Id == "net0")).Pci);
        // The console port sits on the virtio-serial-pci function before it.
        Assert.Equal(5, Assert.IsType<ConsoleDeviceConfig>(m.Devices.Single(d => d.Id == "con0")).Pci!.Slot);
    }

    [Theory]
    [InlineData("0x1f.7", 0x1F, 7)]
    [InlineData("3", 3, 0)]
    [InlineData("0A.1", 0xA, 1)]
    public void AddressesAreHexSlotsWithAFunction(string addr, int slot, int function)
    {
        var m = Parse("q35", "-object", "rng-random,id=r,filename=/dev/urandom", "-device", $"virtio-rng-pci,rng=r,addr={addr}");
        Assert.Equal((slot, function), (m.Devices[0].Pci!.Slot, m.Devices[0].Pci!.Function));
    }

    [Fact]
    public void WithoutAddrTheMachinePicksTheSlot() =>
        Assert.Null(Parse("q35", "-device", "virtio-balloon-pci").Devices[0].Pci!.Slot);

    [Theory]
    [InlineData("addr=0x20", "not a PCI address")]
    [InlineData("addr=0x3.8", "not a PCI address")]
    [InlineData("addr=0x3.1.2", "not a PCI address")]
    [InlineData("addr=zz", "not a PCI address")]
    [InlineData("addr=-1", "not a PCI address")]
    [InlineData("bus=pcie.1", "no such bus")]
    [InlineData("multifunction=maybe", "must be on or off")]
    public void BadPlacementsNameTheProblem(string option, string expected) =>
        Assert.Contains(expected, Error("q35", "-device", $"virtio-balloon-pci,{option}"));

    [Fact]
    public void EachMachineRefusesTheOthersTransport()
    {
        Assert.Contains("needs the standard VM", Error("microvm", "-device", "virtio-balloon-pci"));
        Assert.Contains("q35 machine takes the -pci variants", Error("q35", "-device", "virtio-balloon-device"));
        Assert.Contains("not supported on q35", Error("q35", "-device", "vhost-vsock-pci,guest-cid=3"));
    }
}
