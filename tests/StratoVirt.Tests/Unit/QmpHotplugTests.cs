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

    private string Send(string json) => SendTo(_dispatcher, json);

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
    [InlineData("""{"id":"d","driver":"virtio-rng-device"}""", "virtio-rng-device cannot be hotplugged (only virtio-blk and virtio-net and vhost-user-blk-pci)")]
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

    /// <summary>A q35-like double: the recording machine's hotplug, and chardevs recorded too.</summary>
    private sealed class Q35Double : IHotplug, IChardevHotplug
    {
        public readonly RecordingMachine M = new();
        public List<object> Calls => M.Calls;
        public void BlockdevAdd(BlockdevSpec spec) => M.BlockdevAdd(spec);
        public void BlockdevDel(string nodeName) => M.BlockdevDel(nodeName);
        public void NetdevAdd(NetdevSpec spec) => M.NetdevAdd(spec);
        public void NetdevDel(string id) => M.NetdevDel(id);
        public void DeviceAdd(DeviceAddSpec spec) => M.DeviceAdd(spec);
        public void DeviceDel(string id) => M.DeviceDel(id);
        public void ChardevAdd(ChardevSpec spec) => M.Calls.Add(spec);
        public void ChardevRemove(string id) => M.Calls.Add($"chardev-remove {id}");
    }

    private static string SendTo(QmpDispatcher dispatcher, string json) => Encoding.UTF8.GetString(dispatcher.Handle(
        Encoding.UTF8.GetBytes(json), new QmpSession(new LeakBucket(0, TimeProvider.System), canPassFds: true) { Negotiated = true }, out _)).TrimEnd('\n');

    private const string ChardevAdd = """{"execute":"chardev-add","arguments":{"id":"vub1","backend":{"type":"socket","data":{"addr":{"type":"unix","data":{"path":"/tmp/vub.sock"}},"server":false}}}}""";

    [Fact]
    public void ChardevAddAndVhostUserBlkPciReachAMachineThatStoresChardevs()
    {
        var q35 = new Q35Double();
        var dispatcher = new QmpDispatcher(_machine, q35, _fds);
        Assert.Equal(Ok, SendTo(dispatcher, ChardevAdd));
        Assert.Equal(new ChardevSpec("vub1", "/tmp/vub.sock"), q35.Calls[^1]);
        Assert.Equal(Ok, SendTo(dispatcher, """{"execute":"device_add","arguments":{"id":"vublk1","driver":"vhost-user-blk-pci","chardev":"vub1","bus":"pcie.1","addr":"0x0","num-queues":2,"queue-size":256}}"""));
        Assert.Equal(new DeviceAddSpec("vublk1", HotplugKind.VhostUserBlock, "vub1", 0, null, null)
            { Driver = "vhost-user-blk-pci", Bus = "pcie.1", Queues = 2, QueueSize = 256 }, q35.Calls[^1]);
        Assert.Equal(Ok, SendTo(dispatcher, """{"execute":"device_add","arguments":{"id":"v2","driver":"vhost-user-blk-pci","chardev":"vub1","bus":"pcie.2"}}"""));
        Assert.Equal((1, (ushort)128), (((DeviceAddSpec)q35.Calls[^1]).Queues, ((DeviceAddSpec)q35.Calls[^1]).QueueSize));
        Assert.Equal(Ok, SendTo(dispatcher, """{"execute":"chardev-remove","arguments":{"id":"vub1"}}"""));
        Assert.Equal("chardev-remove vub1", q35.Calls[^1]);
    }

    [Theory]
    [InlineData("""{"id":"c","backend":{"type":"file","data":{"addr":{"type":"unix","data":{"path":"/a"}},"server":false}}}""", "Invalid parameter 'backend' for 'file'")]
    [InlineData("""{"id":"c","backend":{"type":"socket","data":{"addr":{"type":"unix","data":{"path":"/a"}},"server":true}}}""", "Invalid parameter 'backend' for 'server'")]
    [InlineData("""{"id":"c","backend":{"type":"socket","data":{"addr":{"type":"inet","data":{"path":"/a"}},"server":false}}}""", "Invalid parameter 'backend' for 'addr'")]
    [InlineData("""{"id":"","backend":{"type":"socket","data":{"addr":{"type":"unix","data":{"path":"/a"}},"server":false}}}""", "chardev-add: id is empty")]
    [InlineData("""{"id":"c","backend":{"type":"socket","data":{"addr":{"type":"unix","data":{"path":"/a"}}}}}""", "Parameter 'backend.data.server' is missing")]
    [InlineData("""{"id":"c","backend":{"type":"socket","data":{"addr":{"type":"unix","data":{"path":"/a"}},"server":false,"nowait":true}}}""", "Parameter 'backend.data.nowait' is unexpected")]
    public void BadChardevAddArgumentsAreRefused(string arguments, string fragment)
    {
        var q35 = new Q35Double();
        string reply = SendTo(new QmpDispatcher(_machine, q35, _fds), $$"""{"execute":"chardev-add","arguments":{{arguments}}}""");
        Assert.StartsWith("{\"error\":{\"class\":\"GenericError\"", reply);
        Assert.True(reply.Contains(fragment, StringComparison.Ordinal), reply);
        Assert.Empty(q35.Calls);
    }

    [Theory]
    [InlineData("""{"id":"v","driver":"vhost-user-blk-pci","bus":"pcie.1"}""", "vhost-user-blk-pci needs chardev")]
    [InlineData("""{"id":"v","driver":"vhost-user-blk-pci","chardev":"c","num-queues":17}""", "num-queues 17 is not from 1 to 16")]
    [InlineData("""{"id":"v","driver":"vhost-user-blk-pci","chardev":"c","num-queues":0}""", "num-queues 0 is not from 1 to 16")]
    [InlineData("""{"id":"v","driver":"vhost-user-blk-pci","chardev":"c","queue-size":100}""", "queue-size 100 is not a power of two")]
    [InlineData("""{"id":"v","driver":"vhost-user-blk-pci","chardev":"c","queue-size":2048}""", "queue-size 2048 is not a power of two")]
    [InlineData("""{"id":"v","driver":"vhost-user-blk-pci","chardev":"c","num-queues":"2"}""", "Invalid parameter type for 'num-queues'")]
    public void BadVhostUserBlkPciArgumentsAreRefused(string arguments, string fragment)
    {
        AssertError($$"""{"execute":"device_add","arguments":{{arguments}}}""", fragment);
        Assert.Empty(_machine.Calls);
    }

    [Fact]
    public void WithoutChardevStorageChardevAddKeepsUpstreamsMicroVmText() =>
        AssertError(ChardevAdd, "chardev_add not supported yet for microVM");

    [Fact]
    public void TheMachinesRefusalIsTheErrorAndMissingArgumentsAreNamed()
    {
        _machine.Refusal = "Device 'x' not found";
        AssertError("""{"execute":"device_del","arguments":{"id":"x"}}""", "Device 'x' not found");
        AssertError("""{"execute":"device_del"}""", "Parameter 'id' is missing");
        AssertError("""{"execute":"blockdev-del","arguments":{"node":"x"}}""", "Parameter 'node-name' is missing");
    }
}
