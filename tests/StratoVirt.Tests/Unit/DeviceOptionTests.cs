using StratoVirt.Boot.Acpi;
using StratoVirt.Cli;
using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Options;
using StratoVirt.Machine;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Devices.Vsock;

namespace StratoVirt.Tests.Unit;

/// <summary>-drive/-netdev/-chardev/-object/-device as upstream spells them, and where devices land.</summary>
[Trait("Level", "Unit")]
public sealed class DeviceOptionTests
{
    private static MachineConfig Parse(params string[] devices) =>
        Options.FromArgs(ArgParser.Parse(["-machine", "microvm", "-kernel", "/k", .. devices], Options.Specs), 24UL << 30).Machine;

    private static string Error(params string[] devices) => Assert.Throws<UsageException>(() => Parse(devices)).Message;

    [Fact]
    public void UpstreamDeviceSpellingsParse()
    {
        var m = Parse(
            "-object", "iothread,id=io0",
            "-drive", "id=rootfs,file=/img/root.ext4,readonly=off,direct=off",
            "-device", "virtio-blk-device,drive=rootfs,id=rootfs,serial=abc,iothread=io0",
            "-netdev", "tap,id=net0,ifname=tap0",
            "-device", "virtio-net-device,netdev=net0,id=net0,mac=52:54:00:12:34:56",
            "-chardev", "socket,id=con0,path=/tmp/con.sock,server,nowait",
            "-device", "virtio-serial-device",
            "-device", "virtconsole,chardev=con0,id=console0",
            "-object", "rng-random,id=rng0,filename=/dev/urandom",
            "-device", "virtio-rng-device,rng=rng0",
            "-device", "virtio-balloon-device,deflate-on-oom=true",
            "-device", "vhost-vsock-device,id=vsock0,guest-cid=3");
        Assert.Equal(["io0"], m.IoThreads);
        var blk = Assert.IsType<BlockDeviceConfig>(m.Devices[0]);
        Assert.Equal(("rootfs", "/img/root.ext4", false, false, "abc", "io0"), (blk.Id, blk.Path, blk.ReadOnly, blk.Direct, blk.Serial, blk.IoThread));
        var net = Assert.IsType<NetDeviceConfig>(m.Devices[1]);
        Assert.Equal("tap0", net.IfName);
        Assert.Equal(new byte[] { 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, net.Mac);
        var con = Assert.IsType<ConsoleDeviceConfig>(m.Devices[2]);
        Assert.Equal(new ChardevConfig.UnixSocket("con0", "/tmp/con.sock", true, true), con.Chardev);
        Assert.Equal("/dev/urandom", Assert.IsType<RngDeviceConfig>(m.Devices[3]).SourcePath);
        Assert.True(Assert.IsType<BalloonDeviceConfig>(m.Devices[4]).DeflateOnOom);
        Assert.Equal(3UL, Assert.IsType<VsockDeviceConfig>(m.Devices[5]).GuestCid);
    }

    /// <summary>Block devices come first (the first is /dev/vda), then net, then the rest; within each, in the
    /// command line's order.</summary>
    [Fact]
    public void DevicesAreInSlotOrderAndCommandLineOrderWithinASlot()
    {
        var m = Parse(
            "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-device,rng=rng0,id=rng",
            "-netdev", "tap,id=n1,ifname=tap1", "-device", "virtio-net-device,netdev=n1,id=eth1",
            "-drive", "id=d2,file=/b", "-device", "virtio-blk-device,drive=d2,id=second",
            "-netdev", "tap,id=n0,ifname=tap0", "-device", "virtio-net-device,netdev=n0,id=eth0",
            "-drive", "id=d1,file=/a", "-device", "virtio-blk-device,drive=d1,id=first");
        Assert.Equal(["second", "first", "eth1", "eth0", "rng"], [.. m.Devices.Select(d => d.Id)]);
    }

    [Fact]
    public void VhostNetIsATapWithTheKernelServingItsQueuesInASlotOutsideTheHotplugOnes()
    {
        var m = Parse("-netdev", "tap,id=n0,fd=5,vhost=on,vhostfd=6", "-device", "virtio-net-device,netdev=n0,id=eth0",
            "-netdev", "tap,id=n1,ifname=tap1,vhost=on", "-device", "virtio-net-device,netdev=n1,id=eth1",
            "-netdev", "tap,id=n2,ifname=tap2,vhost=off", "-device", "virtio-net-device,netdev=n2,id=eth2");
        var kernelOnFd = Assert.IsType<NetDeviceConfig>(m.Devices[1]);
        var kernelOpened = Assert.IsType<NetDeviceConfig>(m.Devices[2]);
        var user = Assert.IsType<NetDeviceConfig>(m.Devices[0]);
        Assert.Equal(("eth0", 5, true, 6), (kernelOnFd.Id, kernelOnFd.Fd, kernelOnFd.Vhost, kernelOnFd.VhostFd));
        Assert.Equal(("eth1", "tap1", true, (int?)null), (kernelOpened.Id, kernelOpened.IfName, kernelOpened.Vhost, kernelOpened.VhostFd));
        Assert.Equal(("eth2", false), (user.Id, user.Vhost));
        Assert.Equal(VirtioSlotClass.Other, kernelOnFd.Slot);
        Assert.Equal(VirtioSlotClass.Net, user.Slot);
    }

    [Fact]
    public void VhostVsockWithoutUdsPathIsTheKernelBackend()
    {
        var vsock = Assert.IsType<VsockDeviceConfig>(Assert.Single(Parse("-device", "vhost-vsock-device,id=v,guest-cid=7").Devices));
        Assert.Equal(new VsockDeviceConfig("v", 7, null, null), vsock);
        var onFd = Assert.IsType<VsockDeviceConfig>(Assert.Single(Parse("-device", "vhost-vsock-device,id=v,guest-cid=7,vhostfd=9").Devices));
        Assert.Equal(new VsockDeviceConfig("v", 7, null, 9), onFd);
    }

    [Fact]
    public void BlockDevicesTakeTheFirstSlotsWhateverTheOrder()
    {
        var m = Parse("-object", "rng-random,id=r,filename=/dev/urandom", "-device", "virtio-rng-device,rng=r",
            "-drive", "id=d,file=/x", "-device", "virtio-blk-device,drive=d,id=vda");
        Assert.IsType<BlockDeviceConfig>(m.Devices[0]);
        Assert.True(((BlockDeviceConfig)m.Devices[0]).Direct); // upstream's default
    }

    [Theory]
    [InlineData("drive=nope", "no -drive with id 'nope'")]
    [InlineData("id=a", "needs drive=")]
    public void BlockDeviceReferencesMustResolve(string props, string expected) =>
        Assert.Contains(expected, Error("-device", $"virtio-blk-device,{props}"));

    [Fact]
    public void DuplicateIdsAreRefused()
    {
        Assert.Contains("id 'd' is used twice", Error("-drive", "id=d,file=/a", "-drive", "id=d,file=/b"));
        Assert.Contains("id 'x' is used twice", Error("-drive", "id=a,file=/a", "-drive", "id=b,file=/b",
            "-device", "virtio-blk-device,drive=a,id=x", "-device", "virtio-blk-device,drive=b,id=x"));
        Assert.Contains("used by two devices", Error("-drive", "id=a,file=/a",
            "-device", "virtio-blk-device,drive=a,id=x", "-device", "virtio-blk-device,drive=a,id=y"));
    }

    [Theory]
    [InlineData("-netdev", "tap,id=n", "exactly one of ifname= and fd=")]
    [InlineData("-netdev", "tap,id=n,fds=3:4", "multiqueue")]
    [InlineData("-netdev", "user,id=n", "tap only")]
    [InlineData("-netdev", "tap,id=n,ifname=t,vhostfd=4", "vhostfd= needs vhost=on")]
    [InlineData("-netdev", "tap,id=n,ifname=t,vhost=on,vhostfds=4:5", "several vhostfds mean multiqueue")]
    [InlineData("-netdev", "tap,id=n,ifname=t,vhost=on,vhostfd=2", "vhostfd=2 is not an inherited file descriptor")]
    [InlineData("-netdev", "tap,id=n,ifname=t,vhost=maybe", "vhost=maybe must be on or off")]
    [InlineData("-device", "vhost-vsock-device,id=v,guest-cid=3,vhostfd=x", "vhostfd=x is not an inherited file descriptor")]
    [InlineData("-device", "vhost-vsock-device,id=v,guest-cid=3,vhostfd=5,uds-path=/s", "not both")]
    [InlineData("-drive", "id=d,file=/x,format=qcow2", "raw only")]
    [InlineData("-chardev", "socket,id=c,path=/s", "server")]
    [InlineData("-chardev", "tcp,id=c", "unknown backend")]
    [InlineData("-object", "memory-backend-ram,id=m", "size= is required")]
    [InlineData("-device", "virtio-blk-pci,drive=d", "standard VM")]
    [InlineData("-device", "vhost-vsock-device,id=v,guest-cid=2", "out of range")]
    [InlineData("-device", "virtconsole,chardev=c", "virtio-serial-device before it")]
    public void BadValuesNameTheProblem(string option, string value, string expected) =>
        Assert.Contains(expected, Error(option, value));

    [Theory]
    [InlineData("52:54:00:12:34")]
    [InlineData("52:54:00:12:34:zz")]
    [InlineData("01:00:00:00:00:01")]
    public void BadMacsAreRefused(string mac) =>
        Assert.Contains("mac=", Error("-netdev", "tap,id=n,ifname=t", "-device", $"virtio-net-device,netdev=n,mac={mac}"));

    [Fact]
    public void AnUndefinedIothreadIsRefused() =>
        Assert.Contains("iothread 'io9' is not defined",
            Error("-drive", "id=d,file=/x", "-device", "virtio-blk-device,drive=d,iothread=io9"));

    [Fact]
    public void SlotsHaveFixedWindowsAndLegacyIrqs()
    {
        Assert.Equal(new VirtioMmioWindow(0xF010_0000, 0x200, 5), VirtioMmioSlots.Window(0));
        Assert.Equal(new VirtioMmioWindow(0xF010_0200, 0x200, 6), VirtioMmioSlots.Window(1));
        Assert.Equal("virtio_mmio.device=512@0xf0100000:5 virtio_mmio.device=512@0xf0100200:6",
            VirtioMmioSlots.KernelParameters(2));
        // No slot uses an IRQ of a legacy device or the SCI, and none is used twice.
        Assert.DoesNotContain(VirtioMmioSlots.Irqs, irq => irq is 0 or 1 or 2 or 4 or 8 or 9 || irq >= 16);
        Assert.Equal(VirtioMmioSlots.Irqs.Length, VirtioMmioSlots.Irqs.Distinct().Count());
    }
}
