using System.Text;
using StratoVirt.Machine;
using StratoVirt.Qmp;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Unit;

/// <summary>The hotplug commands' argument handling, against a machine double that records what it is asked.</summary>
[Trait("Level", "Unit")]
public sealed class QmpHotplugTests
{
    private readonly RecordingMachine _machine = new();
    private readonly QmpFdStore _fds = new();
    private readonly QmpDispatcher _dispatcher;

    public QmpHotplugTests() => _dispatcher = new QmpDispatcher(_machine, _machine, _fds);

    private string Send(string json)
    {
        byte[] reply = _dispatcher.Handle(Encoding.UTF8.GetBytes(json), new QmpSession(new LeakBucket(0, TimeProvider.System), canPassFds: true) { Negotiated = true }, out _);
        return Encoding.UTF8.GetString(reply).TrimEnd('\n');
    }

    private void AssertError(string json, string fragment)
    {
        string reply = Send(json);
        Assert.StartsWith("{\"error\":{\"class\":\"GenericError\"", reply);
        Assert.True(reply.Contains(fragment, StringComparison.Ordinal), reply);
    }

    private const string Ok = "{\"return\":{}}";

    [Fact]
    public void KatasBlockdevAddAndDeviceAddAreAccepted()
    {
        Assert.Equal(Ok, Send("""{"execute":"blockdev-add","arguments":{"node-name":"drive-1","driver":"raw","read-only":false,"file":{"driver":"file","filename":"/img/a","aio":"native"}}}"""));
        Assert.Equal(new BlockdevSpec("drive-1", "/img/a", false, true), _machine.Calls[^1]);
        Assert.Equal(Ok, Send("""{"execute":"device_add","arguments":{"id":"drive-1","driver":"virtio-blk-mmio","drive":"drive-1","addr":"0x2","romfile":"","share-rw":"on"}}"""));
        Assert.Equal(new DeviceAddSpec("drive-1", HotplugKind.Block, "drive-1", 2, null, null) { Driver = "virtio-blk-mmio" }, _machine.Calls[^1]);
        Assert.Equal(Ok, Send("""{"execute":"device_del","arguments":{"id":"drive-1"}}"""));
        Assert.Equal("device-del drive-1", _machine.Calls[^1]);
        Assert.Equal(Ok, Send("""{"execute":"blockdev-del","arguments":{"node-name":"drive-1"}}"""));
        Assert.Equal("blockdev-del drive-1", _machine.Calls[^1]);
    }

    [Fact]
    public void BlockdevAddOptionsMapToTheSpec()
    {
        Assert.Equal(Ok, Send("""{"execute":"blockdev-add","arguments":{"node-name":"n","file":{"driver":"host_device","filename":"/dev/sdz"},"read-only":true,"cache":{"direct":false,"no-flush":true},"detect-zeroes":"unmap","discard":"unmap","media":"disk","throttling.iops-total":100}}"""));
        Assert.Equal(new BlockdevSpec("n", "/dev/sdz", true, false), _machine.Calls[^1]);
    }

    [Theory]
    [InlineData("""{"node-name":"n","driver":"qcow2","file":{"driver":"file","filename":"/a"}}""", "qcow2 is not supported")]
    [InlineData("""{"node-name":"n","driver":"vmdk","file":{"driver":"file","filename":"/a"}}""", "driver 'vmdk' is not supported")]
    [InlineData("""{"node-name":"n","file":{"driver":"nbd","filename":"/a"}}""", "file driver 'nbd'")]
    [InlineData("""{"node-name":"n","file":{"driver":"file","filename":"/a","aio":"fast"}}""", "aio 'fast'")]
    [InlineData("""{"node-name":"n","file":{"driver":"file","filename":"/a"},"media":"cdrom"}""", "media 'cdrom'")]
    [InlineData("""{"node-name":"","file":{"driver":"file","filename":"/a"}}""", "node-name is empty")]
    [InlineData("""{"node-name":"n","file":{"driver":"file","filename":"/a"},"bogus":1}""", "Parameter 'bogus' is unexpected")]
    [InlineData("""{"node-name":"n"}""", "Parameter 'file' is missing")]
    [InlineData("""{"node-name":"n","file":{"driver":"file","filename":"/a","extra":true}}""", "Parameter 'file.extra' is unexpected")]
    public void BadBlockdevAddArgumentsAreRefused(string arguments, string fragment)
    {
        AssertError($$"""{"execute":"blockdev-add","arguments":{{arguments}}}""", fragment);
        Assert.Empty(_machine.Calls);
    }

    [Fact]
    public void DeviceAddResolvesBackendSlotMacAndSerial()
    {
        Send("""{"execute":"device_add","arguments":{"id":"d","driver":"virtio-blk-device","lun":0,"serial":"SER"}}""");
        Assert.Equal(new DeviceAddSpec("d", HotplugKind.Block, "d", 1, null, "SER") { Driver = "virtio-blk-device" }, _machine.Calls[^1]);
        Send("""{"execute":"device_add","arguments":{"id":"q","driver":"virtio-blk-pci","drive":"d1","bus":"pcie.1","addr":"0x0"}}""");
        Assert.Equal(new DeviceAddSpec("q", HotplugKind.Block, "d1", 0, null, null) { Driver = "virtio-blk-pci", Bus = "pcie.1" }, _machine.Calls[^1]);
        Send("""{"execute":"device_add","arguments":{"id":"e","driver":"virtio-net-mmio","netdev":"n0","addr":"1","mac":"52:54:00:00:00:07"}}""");
        var net = Assert.IsType<DeviceAddSpec>(_machine.Calls[^1]);
        Assert.Equal(("e", HotplugKind.Net, "n0", (int?)1), (net.Id, net.Kind, net.Backend, net.Slot));
        Assert.Equal(new byte[] { 0x52, 0x54, 0, 0, 0, 7 }, net.Mac);
        Send("""{"execute":"device_add","arguments":{"id":"f","driver":"virtio-net-device","chardev":"n1"}}""");
        Assert.Equal(("n1", (int?)null), (((DeviceAddSpec)_machine.Calls[^1]).Backend, ((DeviceAddSpec)_machine.Calls[^1]).Slot));
    }

    [Theory]
    [InlineData("""{"id":"d","driver":"virtio-rng-device"}""", "virtio-rng-device cannot be hotplugged (only virtio-blk and virtio-net)")]
    [InlineData("""{"id":"d","driver":"virtio-blk-pci","bus":1}""", "Invalid parameter type for 'bus'")]
    [InlineData("""{"id":"d","driver":"virtio-blk-mmio","addr":"0xzz"}""", "Invalid addr '0xzz' for device d")]
    [InlineData("""{"id":"d","driver":"virtio-blk-mmio","lun":-1}""", "Invalid lun -1")]
    [InlineData("""{"id":"d","driver":"virtio-net-mmio","mac":"01:00:5e:00:00:01"}""", "multicast")]
    [InlineData("""{"id":"d","driver":"virtio-blk-mmio","serial":"123456789012345678901"}""", "longer than 20 bytes")]
    [InlineData("""{"id":"d","driver":"virtio-blk-mmio","colour":"red"}""", "Parameter 'colour' is unexpected")]
    [InlineData("""{"driver":"virtio-blk-mmio"}""", "Parameter 'id' is missing")]
    public void BadDeviceAddArgumentsAreRefused(string arguments, string fragment)
    {
        AssertError($$"""{"execute":"device_add","arguments":{{arguments}}}""", fragment);
        Assert.Empty(_machine.Calls);
    }

    [Fact]
    public void NetdevAddTakesAnIfnameANamedFdOrAnInheritedNumber()
    {
        Assert.Equal(Ok, Send("""{"execute":"netdev_add","arguments":{"id":"n0","ifname":"tap9","type":"tap","queues":1,"script":"no"}}"""));
        Assert.Equal(new NetdevSpec("n0", "tap9", null, null), _machine.Calls[^1]);
        Assert.Equal(Ok, Send("""{"execute":"netdev_add","arguments":{"id":"n1","fds":"7"}}"""));
        Assert.Equal(new NetdevSpec("n1", null, 7, null), _machine.Calls[^1]);
        using var named = FileDescriptor.Open("/dev/null", Libc.O_RDONLY);
        _fds.Add("tapfd", named);
        Assert.Equal(Ok, Send("""{"execute":"netdev_add","arguments":{"id":"n2","fd":"tapfd"}}"""));
        Assert.Same(named, ((NetdevSpec)_machine.Calls[^1]).OwnedFd);
        Assert.Equal(Ok, Send("""{"execute":"netdev_del","arguments":{"id":"n2"}}"""));
        Assert.Equal("netdev-del n2", _machine.Calls[^1]);
    }

    [Theory]
    [InlineData("""{"id":"n","fds":"3:4"}""", "multiqueue is not supported")]
    [InlineData("""{"id":"n","ifname":"tap0","queues":2}""", "multiqueue is not supported")]
    [InlineData("""{"id":"n","ifname":"tap0","vhost":true}""", "vhost-net is not supported")]
    [InlineData("""{"id":"n","fds":"3","vhostfds":"4"}""", "vhost-net is not supported")]
    [InlineData("""{"id":"n","type":"user"}""", "type 'user' is not supported")]
    [InlineData("""{"id":"n"}""", "exactly one of ifname and fd/fds")]
    [InlineData("""{"id":"n","ifname":"tap0","fd":"3"}""", "exactly one of ifname and fd/fds")]
    [InlineData("""{"id":"n","fd":"eth"}""", "neither a name given with getfd nor a descriptor number")]
    [InlineData("""{"id":"n","ifname":"tap0","script":"/etc/qemu-ifup"}""", "script '/etc/qemu-ifup'")]
    [InlineData("""{"ifname":"tap0"}""", "Parameter 'id' is missing")]
    public void BadNetdevAddArgumentsAreRefused(string arguments, string fragment)
    {
        AssertError($$"""{"execute":"netdev_add","arguments":{{arguments}}}""", fragment);
        Assert.Empty(_machine.Calls);
    }

    [Fact]
    public void TheMachinesRefusalIsTheErrorAndMissingArgumentsAreNamed()
    {
        _machine.Refusal = "Device 'x' not found";
        AssertError("""{"execute":"device_del","arguments":{"id":"x"}}""", "Device 'x' not found");
        AssertError("""{"execute":"device_del"}""", "Parameter 'id' is missing");
        AssertError("""{"execute":"blockdev-del","arguments":{"node":"x"}}""", "Parameter 'node-name' is missing");
    }
}
