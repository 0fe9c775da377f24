using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using StratoVirt.Qmp;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Unit;

/// <summary>TCP listeners, fds passed by SCM_RIGHTS, the rate limit and upstream's command surface.</summary>
public sealed partial class QmpServerTests
{
    private QmpServer StartTcp() =>
        _server = new QmpServer([new MonitorEndpoint.Tcp(IPAddress.Loopback, 0)], _loop, _machine);

    private int TcpPort => ((MonitorEndpoint.Tcp)_server!.Endpoints[0]).Port;

    [Fact]
    public void TcpClientsAreServedOneAtATime()
    {
        StartTcp();
        Assert.NotEqual(0, TcpPort);
        var first = Client.Tcp(TcpPort);
        Assert.Equal(Greeting, first.ReadLine());
        Assert.Equal(Empty, first.Execute(Caps));
        using var second = Client.Tcp(TcpPort);
        Assert.True(second.IsQuietFor(200)); // waits in the backlog
        first.Send("""{"execute":"query""");   // leaves mid-command
        first.Dispose();
        Assert.Equal(Greeting, second.ReadLine());
        Assert.Equal("""{"return":{"actual":1073741824},"id":2}""", second.Execute("""{"execute":"query-balloon","id":2}"""));
    }

    [Fact]
    public void TcpPortInUseIsAClearError()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        int port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        var e = Assert.Throws<SysException>(() => new QmpServer([new MonitorEndpoint.Tcp(IPAddress.Loopback, port)], _loop, _machine));
        Assert.Equal(Libc.EADDRINUSE, e.Errno);
        Assert.Contains($"bind tcp 127.0.0.1:{port}", e.Message);
        // An address that is not this host's.
        e = Assert.Throws<SysException>(() => new QmpServer([new MonitorEndpoint.Tcp(IPAddress.Parse("192.0.2.1"), 0)], _loop, _machine));
        Assert.Equal(Libc.EADDRNOTAVAIL, e.Errno);
    }

    [Fact]
    public void UnixAndTcpListenersShareOneClientSlot()
    {
        _server = new QmpServer([new MonitorEndpoint.Unix(_path), new MonitorEndpoint.Tcp(IPAddress.Loopback, 0)], _loop, _machine);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_path));
        var unix = new Client(_path);
        Assert.Equal(Greeting, unix.ReadLine());
        using var tcp = Client.Tcp(((MonitorEndpoint.Tcp)_server.Endpoints[1]).Port);
        Assert.True(tcp.IsQuietFor(200));
        unix.Dispose();
        Assert.Equal(Greeting, tcp.ReadLine());
        Assert.Contains("\"running\":true", tcp.Execute("""{"execute":"query-status"}"""));
        _server.Dispose();
        Assert.False(File.Exists(_path));
    }

    /// <summary>A connected pair of unix sockets: the test passes one end's fd to the VMM and watches the other
    /// for end-of-stream, which comes once every copy of the passed end is closed.</summary>
    private sealed class SocketPair : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        public Socket Passed { get; } = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        public Socket Watched { get; }

        public SocketPair(string path)
        {
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            _listener.Listen();
            Passed.Connect(new UnixDomainSocketEndPoint(path));
            Watched = _listener.Accept();
        }

        public int PassedFd => (int)Passed.Handle;

        /// <summary>True when the watched end sees end-of-stream within 2 s: the passed end is closed everywhere.</summary>
        public bool PeerClosed()
        {
            if (!Watched.Poll(2_000_000, SelectMode.SelectRead)) return false;
            return Watched.Receive(new byte[16]) == 0;
        }

        public bool PeerOpen() => !Watched.Poll(100_000, SelectMode.SelectRead);

        public void Dispose()
        {
            Passed.Dispose();
            Watched.Dispose();
            _listener.Dispose();
        }
    }

    [Fact]
    public void GetfdKeepsThePassedFdUntilClosefd()
    {
        using var c = Connect();
        using var pair = new SocketPair(Path.Combine(_dir.Path, "pair.sock"));
        Assert.Equal("""{"return":{},"id":1}""", c.ExecuteWithFd("""{"execute":"getfd","arguments":{"fdname":"fd1"},"id":1}""", pair.PassedFd));
        pair.Passed.Close(); // the VMM's copy is the only one left
        Assert.True(pair.PeerOpen());
        Assert.Equal(1, _server!.Fds.Count);
        Assert.Equal(Empty, c.Execute("""{"execute":"closefd","arguments":{"fdname":"fd1"}}"""));
        Assert.True(pair.PeerClosed());
        Assert.Equal("""{"error":{"class":"GenericError","desc":"File descriptor named 'fd1' not found"}}""",
            c.Execute("""{"execute":"closefd","arguments":{"fdname":"fd1"}}"""));
    }

    [Fact]
    public void AConsumerTakesANamedFdAndAReusedNameClosesTheOldOne()
    {
        using var c = Connect();
        using var first = new SocketPair(Path.Combine(_dir.Path, "a.sock"));
        using var second = new SocketPair(Path.Combine(_dir.Path, "b.sock"));
        Assert.Equal(Empty, c.ExecuteWithFd("""{"execute":"getfd","arguments":{"fdname":"tap"}}""", first.PassedFd));
        first.Passed.Close();
        Assert.Equal(Empty, c.ExecuteWithFd("""{"execute":"getfd","arguments":{"fdname":"tap"}}""", second.PassedFd));
        second.Passed.Close();
        Assert.True(first.PeerClosed()); // replaced, so closed
        Assert.True(_server!.Fds.TryTake("tap", out var fd));
        Assert.True(second.PeerOpen());
        Assert.False(_server.Fds.TryTake("tap", out _));
        fd.Dispose();
        Assert.True(second.PeerClosed());
    }

    [Fact]
    public void FdsAreClosedWhenTheServerIsDisposed()
    {
        using var c = Connect();
        using var pair = new SocketPair(Path.Combine(_dir.Path, "pair.sock"));
        Assert.Equal(Empty, c.ExecuteWithFd("""{"execute":"getfd","arguments":{"fdname":"x"}}""", pair.PassedFd));
        pair.Passed.Close();
        _server!.Dispose();
        Assert.True(pair.PeerClosed());
    }

    [Fact]
    public void AnFdWithAnotherCommandIsClosedAndGetfdWithoutOneFails()
    {
        using var c = Connect();
        using var pair = new SocketPair(Path.Combine(_dir.Path, "pair.sock"));
        Assert.Contains("\"running\":true", c.ExecuteWithFd("""{"execute":"query-status"}""", pair.PassedFd));
        pair.Passed.Close();
        Assert.True(pair.PeerClosed());
        Assert.Equal("""{"error":{"class":"GenericError","desc":"No file descriptor supplied via SCM_RIGHTS"}}""",
            c.Execute("""{"execute":"getfd","arguments":{"fdname":"fd1"}}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'fdname' is missing"}}""",
            c.Execute("""{"execute":"getfd"}"""));
        Assert.Equal(0, _server!.Fds.Count);
    }

    [Fact]
    public void AnFdSentWithTheFirstPartOfASplitGetfdBelongsToIt()
    {
        using var c = Connect();
        using var pair = new SocketPair(Path.Combine(_dir.Path, "pair.sock"));
        // One send: a whole query-status, then the start of getfd with the fd. The fd belongs to getfd, so the
        // query-status (which closes fds it is sent with) must leave it alone.
        c.SendWithFd("""{"execute":"query-status","id":1}{"execute":"getfd",""", pair.PassedFd);
        pair.Passed.Close();
        Assert.EndsWith("\"id\":1}", c.ReadLine());
        Assert.True(pair.PeerOpen());
        Assert.Equal("""{"return":{},"id":2}""", c.Execute("""  "arguments":{"fdname":"late"},"id":2}"""));
        Assert.True(_server!.Fds.TryTake("late", out var fd));
        fd.Dispose();
        Assert.True(pair.PeerClosed());
    }

    [Fact]
    public void GetfdOverTcpHasNoFd()
    {
        StartTcp();
        using var c = Client.Tcp(TcpPort);
        Assert.Equal(Greeting, c.ReadLine());
        Assert.Equal("""{"error":{"class":"GenericError","desc":"No file descriptor supplied via SCM_RIGHTS"}}""",
            c.Execute("""{"execute":"getfd","arguments":{"fdname":"fd1"}}"""));
    }

    [Fact]
    public void GetfdRefusesANameStartingWithADigit()
    {
        using var c = Connect();
        using var pair = new SocketPair(Path.Combine(_dir.Path, "pair.sock"));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'fdname' expects a name not starting with a digit"}}""",
            c.ExecuteWithFd("""{"execute":"getfd","arguments":{"fdname":"3"}}""", pair.PassedFd));
        pair.Passed.Close();
        Assert.True(pair.PeerClosed());
    }

    private sealed class ManualClock : TimeProvider
    {
        public long Ticks;

        public override long TimestampFrequency => 1_000_000_000;

        public override long GetTimestamp() => Ticks;
    }

    [Fact]
    public void RequestsBeyondTheRateAreThrottled()
    {
        var clock = new ManualClock { Ticks = 5_000_000_000 };
        Start(clock: clock);
        using var c = Connect(negotiate: false);
        // Upstream's bucket: a burst of 101 passes, the 102nd finds it above capacity.
        var burst = new System.Text.StringBuilder();
        for (int i = 0; i < 102; i++) burst.Append($$"""{"execute":"query-status","id":{{i}}}""");
        c.Send(burst.ToString());
        for (int i = 0; i < 101; i++) Assert.StartsWith("""{"return":{"running":true""", c.ReadLine());
        Assert.Equal("""{"error":{"class":"OperationThrottled","desc":"More than 100 requests received during 1 second"},"id":101}""",
            c.ReadLine());
        Assert.Contains("OperationThrottled", c.Execute("garbage")); // malformed input counts too
        clock.Ticks += 10_000_000; // 10 ms drains one request
        Assert.Equal("""{"return":{"running":true,"singlestep":false,"status":"running"},"id":"a"}""",
            c.Execute("""{"execute":"query-status","id":"a"}"""));
        Assert.Contains("OperationThrottled", c.Execute("""{"execute":"query-status"}"""));
        clock.Ticks += 2_000_000_000; // after a quiet second the full burst is available again
        for (int i = 0; i < 101; i++) Assert.StartsWith("""{"return":""", c.Execute("""{"execute":"query-status"}"""));
        Assert.Contains("OperationThrottled", c.Execute("""{"execute":"query-status"}"""));
    }

    [Theory]
    [InlineData("migrate_cancel", "migrate_cancel is not supported by this machine")]
    [InlineData("chardev-add", "chardev_add not supported yet for microVM")]
    [InlineData("query-vnc", "The service of VNC is not supported")]
    [InlineData("human-monitor-command", "human-monitor-command is not supported yet")]
    [InlineData("trace-get-state", "trace-get-state is not supported by this machine")]
    public void UpstreamCommandsThisMachineLacksAreGenericErrors(string name, string desc)
    {
        using var c = Connect();
        Assert.Equal($$"""{"error":{"class":"GenericError","desc":"{{desc}}"},"id":3}""",
            c.Execute($$"""{"execute":"{{name}}","id":3}"""));
    }

    /// <summary>Every name in upstream's define_qmp_command_enum! is served or answers; none is CommandNotFound.</summary>
    [Fact]
    public void EveryUpstreamCommandNameIsKnown()
    {
        string[] upstream =
        [
            "qmp_capabilities", "stop", "cont", "system_powerdown", "system_reset", "device_add", "device_del",
            "chardev-add", "chardev-remove", "netdev_add", "netdev_del", "netdev_replace", "netlink_set", "cameradev_add",
            "cameradev_del", "query-hotpluggable-cpus", "query-cpus", "query-status", "getfd", "blockdev-add", "blockdev-del",
            "balloon", "set-viomem", "get-viomem", "query-mem", "query-mem-gpa", "query-balloon", "query-vnc",
            "query-display-image", "switch-audio-record", "migrate", "query-migrate", "migrate_cancel", "query-version",
            "query-commands", "query-target", "query-kvm", "query-machines", "query-events", "qom-list-types",
            "device-list-properties", "block-commit", "query-tpm-models", "query-tpm-types", "query-command-line-options",
            "query-migrate-capabilities", "query-qmp-schema", "query-sev-capabilities", "query-chardev", "qom-list", "qom-get",
            "query-block", "query-named-block-nodes", "query-blockstats", "query-block-jobs", "query-gic-capabilities",
            "query-iothreads", "update_region", "input_event", "human-monitor-command", "blockdev-snapshot-internal-sync",
            "blockdev-snapshot-delete-internal-sync", "query-vcpu-reg", "trace-get-state", "trace-set-state",
            "query-ohui-status", "query-workloads", "detect-silent-audio",
        ];
        Assert.Equal(68, upstream.Length); // 69 with quit, which is tested on its own
        using var c = Connect();
        foreach (string name in upstream)
            Assert.DoesNotContain("CommandNotFound", c.Execute($$"""{"execute":"{{name}}"}"""));
    }

    [Fact]
    public void ProbesGiveUpstreamsCannedAnswersAndIgnoreArguments()
    {
        using var c = Connect();
        Assert.Equal("""{"return":[]}""", c.Execute("""{"execute":"qom-list","arguments":{"path":"/machine"}}"""));
        Assert.Equal("""{"return":[]}""", c.Execute("""{"execute":"query-tpm-models"}"""));
        Assert.Equal("""{"return":{}}""", c.Execute("""{"execute":"query-qmp-schema"}"""));
        Assert.Equal("""{"return":[]}""", c.Execute("""{"execute":"query-iothreads"}"""));
        string types = c.Execute("""{"execute":"qom-list-types"}""");
        Assert.StartsWith("""{"return":[{"name":"ioh3420","parent":"pcie-root-port-base"},""", types);
        Assert.Contains("""{"name":"vhost-vsock-device","parent":"virtio-device"}""", types);
        Assert.Equal("""{"return":[{"parameters":[{"name":"discard","help":"discard operation (unmap|ignore)","type":"string"},{"name":"detect-zeroes","help":"optimize zero writes (unmap|on|off)","type":"string"}],"option":"drive"}]}""",
            c.Execute("""{"execute":"query-command-line-options","arguments":{"option":"drive"}}"""));
        Assert.Equal("""{"return":[{"name":"disable-legacy","type":"OnOffAuto"},{"name":"num-queues","type":"uint16"}]}""",
            c.Execute("""{"execute":"device-list-properties","arguments":{"typename":"virtio-blk-device"}}"""));
        Assert.Equal("""{"return":[{"name":"disable-legacy","type":"OnOffAuto"}]}""",
            c.Execute("""{"execute":"device-list-properties"}"""));
    }

    [Fact]
    public void HotpluggableCpusListEveryVcpuAsPresent()
    {
        using var c = Connect();
        Assert.Equal(
            """{"return":[{"type":"host-x86-cpu","vcpus-count":1,"props":{"core-id":0,"socket-id":0,"thread-id":0},"qom-path":"/machine/unattached/device[0]"},"""
            + """{"type":"host-x86-cpu","vcpus-count":1,"props":{"core-id":1,"socket-id":0,"thread-id":0},"qom-path":"/machine/unattached/device[1]"}]}""",
            c.Execute("""{"execute":"query-hotpluggable-cpus"}"""));
        Assert.Equal(Empty, c.Execute("""{"execute":"query-mem"}"""));
    }

    [Fact]
    public void MigrateToAFileNeedsAPausedVmAndQueryMigrateReportsTheOutcome()
    {
        using var c = Connect();
        Assert.Equal("""{"return":{"status":"none"}}""", c.Execute("""{"execute":"query-migrate"}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"the VM is running: pause it with stop before migrate"}}""",
            c.Execute("""{"execute":"migrate","arguments":{"uri":"file:/tmp/snap"}}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'uri' is missing"}}""",
            c.Execute("""{"execute":"migrate","arguments":{}}"""));
        Assert.Equal(Empty, c.Execute("""{"execute":"stop"}"""));
        Assert.True(WaitFor(() => !_machine.Running));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Invalid uri 'tcp:127.0.0.1:4446': the microVM migrates only to file:<directory>"}}""",
            c.Execute("""{"execute":"migrate","arguments":{"uri":"tcp:127.0.0.1:4446"}}"""));
        Assert.Equal(Empty, c.Execute("""{"execute":"migrate","arguments":{"uri":"file:/tmp/snap"}}"""));
        Assert.Equal("""{"return":{"status":"completed"}}""", c.Execute("""{"execute":"query-migrate"}"""));
        Assert.Contains("No space left on device", c.Execute("""{"execute":"migrate","arguments":{"uri":"file:/tmp/full"}}"""));
        Assert.Equal("""{"return":{"status":"failed","error-desc":"snapshot to /tmp/full failed: No space left on device"}}""",
            c.Execute("""{"execute":"query-migrate"}"""));
    }

    [Fact]
    public void CommandsWithoutArgumentsRefuseArgumentsAndStrayMembersAreRefused()
    {
        using var c = Connect();
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'verbose' is unexpected"},"id":1}""",
            c.Execute("""{"execute":"query-status","arguments":{"verbose":true},"id":1}"""));
        Assert.Equal(Empty, c.Execute("""{"execute":"stop","arguments":{}}"""));
        // stop runs just after its reply is queued (as quit does), so the reply may arrive first.
        Assert.True(WaitFor(() => !_machine.Running));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'force' is unexpected"}}""",
            c.Execute("""{"execute":"cont","arguments":{"force":1}}"""));
        // Refused, so not run: the next command is handled after anything the refused one would have run.
        Assert.Contains("\"status\":\"paused\"", c.Execute("""{"execute":"query-status"}"""));
        Assert.False(_machine.Running);
        Assert.Equal("""{"error":{"class":"GenericError","desc":"QMP input member 'argument' is unexpected"}}""",
            c.Execute("""{"execute":"cont","argument":{}}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"QMP input member 'arguments' must be an object"}}""",
            c.Execute("""{"execute":"cont","arguments":[]}"""));
    }

    [Fact]
    public void QueryEventsListsTheEventsSent()
    {
        using var c = Connect();
        using var doc = JsonDocument.Parse(c.Execute("""{"execute":"query-events"}"""));
        var names = doc.RootElement.GetProperty("return").EnumerateArray().Select(e => e.GetProperty("name").GetString()).ToList();
        Assert.Contains("SHUTDOWN", names);
        Assert.Contains("BALLOON_CHANGED", names);
        Assert.Contains("BLOCK_IO_ERROR", names);
        Assert.DoesNotContain("USB_HOST_ADD_RES", names);
    }
}
