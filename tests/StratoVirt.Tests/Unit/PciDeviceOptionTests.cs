using StratoVirt.Cli;
using StratoVirt.Devices.Options;
using StratoVirt.Devices.Pci;
using StratoVirt.Machine;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Devices.Fs;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.VhostUserBlock;
using StratoVirt.Virtio.Devices.Vsock;

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
        Assert.Contains("needs the standard VM", Error("microvm", "-device", "vhost-vsock-pci,guest-cid=3"));
        Assert.Contains("q35 machine takes the -pci variants", Error("q35", "-device", "vhost-vsock-device,guest-cid=3"));
        Assert.Contains("not supported on q35", Error("q35", "-device", "virtio-scsi-pci,id=scsi0"));
    }

    [Fact]
    public void VhostDevicesTakeTheirDeviceOptionsAndAnAddress()
    {
        var m = Parse("q35,mem-share=on",
            "-device", "vhost-vsock-pci,id=vsock0,guest-cid=5,vhostfd=7,bus=pcie.0,addr=0x5",
            "-chardev", "socket,id=vfs,path=/tmp/vfs.sock,server,nowait",
            "-device", "vhost-user-fs-pci,chardev=vfs,tag=share,id=fs0,addr=0x6",
            "-chardev", "socket,id=vub,path=/tmp/vub.sock,server,nowait",
            "-device", "vhost-user-blk-pci,chardev=vub,id=vub0,num-queues=2,addr=0x7",
            "-netdev", "tap,id=n,ifname=tap0,vhost=on",
            "-device", "virtio-net-pci,netdev=n,id=net0,addr=0x8");
        var vsock = Assert.IsType<VsockDeviceConfig>(m.Devices.Single(d => d.Id == "vsock0"));
        Assert.Equal((5UL, 7, 5), (vsock.GuestCid, vsock.VhostFd!.Value, vsock.Pci!.Slot));
        var fs = Assert.IsType<FsDeviceConfig>(m.Devices.Single(d => d.Id == "fs0"));
        Assert.Equal(("share", 6), (fs.Tag, fs.Pci!.Slot));
        var blk = Assert.IsType<VhostUserBlockConfig>(m.Devices.Single(d => d.Id == "vub0"));
        Assert.Equal((2, 7), (blk.Queues, blk.Pci!.Slot));
        var net = Assert.IsType<NetDeviceConfig>(m.Devices.Single(d => d.Id == "net0"));
        Assert.True(net.Vhost);
        Assert.Equal(8, net.Pci!.Slot);
        Assert.Contains("guest-cid=2 is out of range", Error("q35", "-device", "vhost-vsock-pci,guest-cid=2"));
    }

    private const string RootPort = "pcie-root-port,id=pcie.1,port=0x1,chassis=1,bus=pcie.0,addr=0x2,multifunction=on";

    [Fact]
    public void RootPortsAreDeclaredAndDevicesGoBehindThem()
    {
        var m = Parse("q35", "-device", RootPort, "-device", "pcie-root-port,id=pcie.2,port=2,bus=pcie.0,addr=0x2.1",
            "-drive", "id=d0,file=/img", "-device", "virtio-blk-pci,drive=d0,id=blk1,bus=pcie.1,addr=0x0",
            "-global", "pcie-root-port.fast-unplug=1");
        Assert.Equal([new PcieRootPortConfig("pcie.1", 1, 1, new PciPlacement("pcie.0", 2, 0, true)),
            new PcieRootPortConfig("pcie.2", 2, 0, new PciPlacement("pcie.0", 2, 1, false))], m.RootPorts);
        Assert.Equal(new PciPlacement("pcie.1", 0, 0, false), m.Devices.Single().Pci);
        Assert.True(m.FastUnplug);
        Assert.False(Parse("q35", "-global", "pcie-root-port.fast-unplug=0").FastUnplug);
    }

    [Theory]
    [InlineData("virtio-balloon-pci,bus=pcie.1,addr=0x1", "a device behind root port 'pcie.1' sits at slot 0 (addr=0x0)")]
    [InlineData("virtio-balloon-pci,bus=pcie.3", "bus=pcie.3: no such bus")]
    [InlineData("pcie-root-port,id=pcie.2,port=2,bus=pcie.1,addr=0x3", "root ports go on pcie.0")]
    [InlineData("pcie-root-port,id=pcie.2,port=2,bus=pcie.0", "needs addr=")]
    [InlineData("pcie-root-port,id=pcie.2,bus=pcie.0,addr=0x3", "needs port=")]
    [InlineData("pcie-root-port,id=pcie.2,port=0x100,bus=pcie.0,addr=0x3", "port=0x100 is not a number from 0 to 255")]
    [InlineData("pcie-root-port,id=pcie.1,port=2,bus=pcie.0,addr=0x3", "id 'pcie.1' is used twice")]
    [InlineData("pcie-root-port,id=pcie.2,port=2,bus=pcie.0,addr=0x3,slot=4", "slot")]
    public void BadRootPortsAndDevicesBehindThemNameTheProblem(string device, string expected) =>
        Assert.Contains(expected, Error("q35", "-device", RootPort, "-device", device));

    [Fact]
    public void RootPortsAndFastUnplugAreTheStandardVmsOnly()
    {
        Assert.Contains("pcie-root-port needs the standard VM", Error("microvm", "-device", RootPort));
        Assert.Contains("applies to the standard VM", Error("microvm", "-global", "pcie-root-port.fast-unplug=1"));
        Assert.Contains("only pcie-root-port.fast-unplug=0|1", Error("q35", "-global", "virtio-mmio.force-legacy=false"));
    }
}
