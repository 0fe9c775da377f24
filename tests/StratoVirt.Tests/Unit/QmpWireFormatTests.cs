using System.Text;
using StratoVirt.Qmp;

namespace StratoVirt.Tests.Unit;

/// <summary>Every QMP payload's text, member by member: the names, their order and the members left out when null
/// are what QEMU clients parse. The expected texts are what System.Text.Json's serializer wrote for the same values
/// before the payloads wrote themselves.</summary>
[Trait("Level", "Unit")]
public sealed class QmpWireFormatTests
{
    private static string Text(IQmpValue value) => Encoding.UTF8.GetString(QmpJson.ToUtf8(value.WriteTo));

    private static string Text<T>(T[] items) where T : IQmpValue =>
        Encoding.UTF8.GetString(QmpJson.ToUtf8(w => QmpJson.WriteArray(w, items)));

    [Fact]
    public void RepliesKeepTheirMembers()
    {
        Assert.Equal("""{"qemu":{"micro":1,"minor":0,"major":5},"package":"StratoVirt-2.5.0"}""", Text(QmpServer.Version));
        Assert.Equal("""{"running":true,"singlestep":false,"status":"running"}""", Text(new QmpStatus(true, false, "running")));
        Assert.Equal("""{"actual":1099511627776}""", Text(new BalloonInfo(1UL << 40)));
        Assert.Equal("{}", Text(QmpEmpty.Value));
        Assert.Equal("""[{"CPU":0,"current":true,"halted":false,"qom_path":"/machine/unattached/device[0]","thread_id":1234,"props":{"core-id":0,"socket-id":0,"thread-id":0}}]""",
            Text(new[] { new QmpCpuInfo(0, true, false, "/machine/unattached/device[0]", 1234, new QmpCpuProps(0, 0, 0)) }));
        Assert.Equal("""[{"type":"host-x86-cpu","vcpus-count":1,"props":{"core-id":1,"socket-id":0,"thread-id":0},"qom-path":"/machine/unattached/device[1]"}]""",
            Text(new[] { new QmpHotpluggableCpu("host-x86-cpu", 1, new QmpCpuProps(1, 0, 0), "/machine/unattached/device[1]") }));
        Assert.Equal("""[{"name":"drive","type":"str"}]""", Text(new[] { new QmpProperty("drive", "str") }));
        Assert.Equal("""{"arch":"x86_64"}""", Text(new QmpTarget("x86_64")));
        Assert.Equal("""{"enabled":true,"present":true}""", Text(new QmpKvm(true, true)));
        Assert.Equal("""[{"name":"microvm","cpu-max":254,"hotpluggable-cpus":false,"is-default":true}]""",
            Text(new[] { new QmpMachine("microvm", 254, false, true) }));
        Assert.Equal("""[{"name":"SHUTDOWN"}]""", Text(new[] { new QmpNamed("SHUTDOWN") }));
        Assert.Equal("""{"class":"GenericError","desc":"Parameter 'x' is unexpected"}""",
            Text(new QmpErrorBody("GenericError", "Parameter 'x' is unexpected")));
        Assert.Equal("""{"status":"failed","error-desc":"disk \"full\""}""", Text(new QmpMigrationInfo("failed", "disk \"full\"")));
        Assert.Equal("""{"status":"completed"}""", Text(new QmpMigrationInfo("completed", null)));
    }

    [Fact]
    public void EventDataKeepTheirMembers()
    {
        Assert.Equal("""{"device":"d0","operation":"write","action":"report","nospace":true,"reason":"No space left on device 'x' <é>"}""",
            Text(new BlockIoErrorEventData("d0", "write", "report", true, "No space left on device 'x' <é>")));
        Assert.Equal("""{"device":"vub0","chardev":"c0","socket":"/run/a.sock"}""",
            Text(new BackendDisconnectedEventData("vub0", "c0", "/run/a.sock")));
        Assert.Equal("""{"device":"n0","path":"/machine/peripheral/n0"}""", Text(new DeviceDeletedEventData("n0", "/machine/peripheral/n0")));
        Assert.Equal("""{"guest":false,"reason":"host-qmp-quit"}""", Text(new ShutdownEventData(false, "host-qmp-quit")));
        Assert.Equal("""{"event":"X","data":{"guest":true,"reason":"guest-reset"},"timestamp":{"seconds":1700000000,"microseconds":123000}}""" + "\n",
            Encoding.UTF8.GetString(QmpDispatcher.Event("X", new ShutdownEventData(true, "guest-reset"), DateTimeOffset.FromUnixTimeMilliseconds(1700000000123))));
        Assert.Equal("""{"event":"Y","timestamp":{"seconds":0,"microseconds":5000}}""" + "\n",
            Encoding.UTF8.GetString(QmpDispatcher.Event("Y", null, DateTimeOffset.FromUnixTimeMilliseconds(5))));
    }

    [Fact]
    public void TheGreetingNamesTheQemuVersion() => Assert.Equal(
        """{"QMP":{"version":{"qemu":{"micro":1,"minor":0,"major":5},"package":"StratoVirt-2.5.0"},"capabilities":[]}}""" + "\n",
        Encoding.UTF8.GetString(QmpDispatcher.Greeting()));

    [Fact]
    public void QueryPciLeavesOutWhatAFunctionLacks()
    {
        var nic = new QmpPciDevice(0, 3, 0, new QmpPciClass("Ethernet controller", 0x200), new QmpPciId(1, 0x1af4, 1, 0x1af4), 10, 1, "net0",
            [new QmpPciRegion(1, "io", 0xc000, 32, null, null), new QmpPciRegion(4, "memory", ulong.MaxValue, 16384, false, true)], null);
        var bridge = new QmpPciDevice(0, 4, 0, new QmpPciClass(null, 0x0780), new QmpPciId(2, 3, 4, 5), null, 0, "br", [],
            new QmpPciBridge(new QmpPciBridgeBus(0, 1, 1, new QmpPciRange(0x1000, 0xfff), new QmpPciRange(1, 2), new QmpPciRange(3, 4)), []));
        Assert.Equal("""[{"bus":0,"devices":[{"bus":0,"slot":3,"function":0,"class_info":{"desc":"Ethernet controller","class":512},"id":{"device":1,"vendor":6900,"subsystem":1,"subsystem-vendor":6900},"irq":10,"irq_pin":1,"qdev_id":"net0","regions":[{"bar":1,"type":"io","address":49152,"size":32},{"bar":4,"type":"memory","address":18446744073709551615,"size":16384,"prefetch":false,"mem_type_64":true}]},"""
            + """{"bus":0,"slot":4,"function":0,"class_info":{"class":1920},"id":{"device":2,"vendor":3,"subsystem":4,"subsystem-vendor":5},"irq_pin":0,"qdev_id":"br","regions":[],"pci_bridge":{"bus":{"number":0,"secondary":1,"subordinate":1,"io_range":{"base":4096,"limit":4095},"memory_range":{"base":1,"limit":2},"prefetchable_range":{"base":3,"limit":4}},"devices":[]}}]}]""",
            Text(new[] { new QmpPciInfo(0, [nic, bridge]) }));
    }
}
