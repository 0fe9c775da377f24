using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using StratoVirt.Devices.Pci;
using StratoVirt.Machine;
using StratoVirt.Qmp;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Unit;

/// <summary>The QMP server over real unix and TCP sockets, its loop on a thread of its own, the machine faked.</summary>
[Trait("Level", "Unit")]
public sealed partial class QmpServerTests : IDisposable
{
    private const string Greeting =
        """{"QMP":{"version":{"qemu":{"micro":1,"minor":0,"major":5},"package":"StratoVirt-2.5.0"},"capabilities":[]}}""";
    private const string Caps = """{"execute":"qmp_capabilities"}""";
    private const string Empty = """{"return":{}}""";

    private readonly TempDir _dir = new();
    private readonly EventLoop _loop = new("qmp-test");
    private readonly FakeMachine _machine = new();
    private readonly string _path;
    private QmpServer? _server;

    public QmpServerTests()
    {
        _path = Path.Combine(_dir.Path, "qmp.sock");
        _loop.StartThread(() => { });
    }

    public void Dispose()
    {
        _server?.Dispose();
        _loop.Dispose();
        _dir.Dispose();
    }

    private sealed class FakeMachine : IMachineControl
    {
        public int QuitCalls, ResetCalls, PowerdownCalls;
        public ulong? Actual = 1UL << 30;
        public ulong? Target;

        public void Quit() => Interlocked.Increment(ref QuitCalls);

        public void SystemReset() => Interlocked.Increment(ref ResetCalls);

        public void SystemPowerdown() => Interlocked.Increment(ref PowerdownCalls);

        public ulong? BalloonActual => Actual;

        public IReadOnlyList<(int Index, int ThreadId)> CpuThreads => [(0, 4242), (1, 4243)];

        public bool Running { get; private set; } = true;

        public IReadOnlyList<PciFunctionInfo> PciFunctions => [];

        /// <summary>Makes stop fail the way a defect in the machine would.</summary>
        public bool StopThrows;

        public void Stop()
        {
            if (StopThrows) throw new InvalidOperationException("the machine broke");
            Running = false;
        }

        public void Cont() => Running = true;

        public SnapshotStatus SnapshotStatus { get; private set; } = new("none", null);

        /// <summary>Like the machine: refused while running; a directory named "full" fails as a full disk would.</summary>
        public bool TrySnapshot(string directory, out string? error)
        {
            error = Running ? "the VM is running: pause it with stop before migrate"
                : directory.EndsWith("full", StringComparison.Ordinal) ? $"snapshot to {directory} failed: No space left on device" : null;
            if (!Running) SnapshotStatus = new(error is null ? "completed" : "failed", error);
            return error is null;
        }

        /// <summary>Makes balloon fail the way a defect in the machine would.</summary>
        public bool BalloonThrows;

        public bool TrySetBalloon(ulong targetBytes, out string? error)
        {
            if (BalloonThrows) throw new InvalidOperationException("the balloon broke");
            if (targetBytes < 1 << 20)
            {
                error = "balloon target too small";
                return false;
            }
            Target = targetBytes;
            error = null;
            return true;
        }
    }

    /// <summary>A test-side QMP client reading newline-terminated replies with a timeout.</summary>
    private sealed class Client : IDisposable
    {
        private readonly Socket _socket;
        private readonly StreamReader _reader;

        public Client(string path, int timeoutMs = 5000)
            : this(new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified), new UnixDomainSocketEndPoint(path), timeoutMs)
        {
        }

        public Client(Socket socket, EndPoint endpoint, int timeoutMs = 5000)
        {
            _socket = socket;
            _socket.Connect(endpoint);
            _socket.ReceiveTimeout = timeoutMs;
            _reader = new StreamReader(new NetworkStream(_socket, ownsSocket: false), Encoding.UTF8);
        }

        public static Client Tcp(int port) =>
            new(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), new IPEndPoint(IPAddress.Loopback, port));

        public void Send(string text) => _socket.Send(Encoding.UTF8.GetBytes(text));

        public void Send(byte[] bytes) => _socket.Send(bytes);

        /// <summary>Sends <paramref name="text"/> with <paramref name="fd"/> attached by SCM_RIGHTS.</summary>
        public void SendWithFd(string text, int fd)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            Assert.Equal(bytes.Length, UnixSocket.SendWithFd((int)_socket.Handle, bytes, fd));
        }

        public string ExecuteWithFd(string json, int fd)
        {
            SendWithFd(json + "\n", fd);
            return ReadLine() ?? throw new EndOfStreamException();
        }

        public string? ReadLine() => _reader.ReadLine();

        public string Execute(string json)
        {
            Send(json + "\n");
            return ReadLine() ?? throw new EndOfStreamException();
        }

        /// <summary>True when nothing arrives within <paramref name="ms"/>.</summary>
        public bool IsQuietFor(int ms) => !_socket.Poll(ms * 1000, SelectMode.SelectRead);

        public void Dispose()
        {
            _reader.Dispose();
            _socket.Dispose();
        }
    }

    private QmpServer Start(int rateLimit = QmpServer.DefaultRateLimit, TimeProvider? clock = null) =>
        _server = new QmpServer([new MonitorEndpoint.Unix(_path)], _loop, _machine, rateLimit: rateLimit, clock: clock);

    private Client Connect(bool negotiate = true)
    {
        _server ??= Start();
        var c = new Client(_path);
        Assert.Equal(Greeting, c.ReadLine());
        if (negotiate) Assert.Equal(Empty, c.Execute(Caps));
        return c;
    }

    private static bool WaitFor(Func<bool> condition)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.ElapsedMilliseconds > 5000) return false;
            Thread.Sleep(5);
        }
        return true;
    }

    [Fact]
    public void GreetsOnConnect()
    {
        using var c = Connect(negotiate: false);
        Assert.True(_server!.HasClient);
    }

    /// <summary>As upstream: commands run without qmp_capabilities (upstream-style scripts), and a QEMU client's
    /// negotiation works, however often it comes.</summary>
    [Fact]
    public void CapabilitiesNegotiationIsAcceptedButNotRequired()
    {
        using var c = Connect(negotiate: false);
        Assert.Equal("""{"return":{"running":true,"singlestep":false,"status":"running"},"id":1}""",
            c.Execute("""{"execute":"query-status","id":1}"""));
        Assert.Equal("""{"return":{},"id":"caps"}""", c.Execute("""{"execute":"qmp_capabilities","id":"caps"}"""));
        Assert.Equal(Empty, c.Execute(Caps));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'enable' is unexpected"}}""",
            c.Execute("""{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"""));
    }

    [Fact]
    public void EventsStartWithTheClientsFirstCommandEvenWithoutNegotiation()
    {
        using var c = Connect(negotiate: false);
        _server!.SendEvent("STOP"); // no command yet: a QEMU client would be mid-negotiation, so nothing is sent
        Assert.True(c.IsQuietFor(100));
        Assert.Contains("\"running\":true", c.Execute("""{"execute":"query-status"}"""));
        _server.SendEvent("RESUME");
        Assert.StartsWith("""{"event":"RESUME",""", c.ReadLine());
    }

    [Fact]
    public void BalloonAndQueryBalloonReachTheMachine()
    {
        using var c = Connect();
        Assert.Equal("""{"return":{},"id":{"n":[1]}}""",
            c.Execute("""{"execute":"balloon","arguments":{"value":536870912},"id":{"n":[1]}}"""));
        Assert.Equal(536870912UL, _machine.Target);
        Assert.Equal("""{"return":{"actual":1073741824}}""", c.Execute("""{"execute":"query-balloon"}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"balloon target too small"}}""",
            c.Execute("""{"execute":"balloon","arguments":{"value":4096}}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'value' expects uint64"}}""",
            c.Execute("""{"execute":"balloon","arguments":{"value":-1}}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'extra' is unexpected"}}""",
            c.Execute("""{"execute":"balloon","arguments":{"value":1073741824,"extra":2}}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Invalid parameter type for 'value', expected: integer"}}""",
            c.Execute("""{"execute":"balloon","arguments":{"value":"1G"}}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Invalid parameter type for 'value', expected: integer"}}""",
            c.Execute("""{"execute":"balloon","arguments":{"value":1.5}}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'value' is missing"}}""",
            c.Execute("""{"execute":"balloon"}"""));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"Parameter 'value' is missing"}}""",
            c.Execute("""{"execute":"balloon","arguments":{}}"""));
        Assert.Equal(536870912UL, _machine.Target); // none of the refused requests reached the machine
    }

    [Fact]
    public void BalloonCommandsFailWithoutABalloon()
    {
        _machine.Actual = null;
        using var c = Connect();
        const string error = """{"error":{"class":"DeviceNotActive","desc":"No balloon device has been activated"}}""";
        Assert.Equal(error, c.Execute("""{"execute":"balloon","arguments":{"value":536870912}}"""));
        Assert.Equal(error, c.Execute("""{"execute":"query-balloon"}"""));
        Assert.Null(_machine.Target);
    }

    [Fact]
    public void RequestSplitAcrossReadsIsReassembled()
    {
        using var c = Connect();
        c.Send("""{"execute":"query-""");
        Assert.True(c.IsQuietFor(100));
        c.Send("""balloon","id":"a\"}"}""");
        Assert.Equal("""{"return":{"actual":1073741824},"id":"a\"}"}""", c.ReadLine());
    }

    [Fact]
    public void SeveralRequestsInOneWriteAreAnsweredInOrder()
    {
        using var c = Connect();
        c.Send("""{"execute":"query-balloon","id":1}{"execute":"nope","id":2}""" + "\n  " +
            """{"execute":"query-status","id":3}""" + "\r\n");
        Assert.Equal("""{"return":{"actual":1073741824},"id":1}""", c.ReadLine());
        Assert.Equal("""{"error":{"class":"CommandNotFound","desc":"The command nope has not been found"},"id":2}""",
            c.ReadLine());
        Assert.EndsWith("\"id\":3}", c.ReadLine());
    }

    [Fact]
    public void MalformedJsonGetsAnErrorAndTheConnectionStaysUsable()
    {
        using var c = Connect();
        string broken = c.Execute("""{"execute": }""");
        Assert.StartsWith("""{"error":{"class":"GenericError","desc":"JSON parse error""", broken);
        Assert.StartsWith("""{"error":{"class":"GenericError","desc":"JSON parse error""", c.Execute("garbage"));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"QMP input must be a JSON object"}}""", c.Execute("[1,2]"));
        Assert.Equal("""{"error":{"class":"GenericError","desc":"QMP input lacks member 'execute'"},"id":5}""",
            c.Execute("""{"id":5}"""));
        Assert.Equal("""{"return":{"actual":1073741824}}""", c.Execute("""{"execute":"query-balloon"}"""));
    }

    [Fact]
    public void UnknownCommandIsCommandNotFound()
    {
        using var c = Connect();
        Assert.Equal("""{"error":{"class":"CommandNotFound","desc":"The command xyz has not been found"}}""",
            c.Execute("""{"execute":"xyz"}"""));
    }

    [Fact]
    public void VersionAndCommandListAreReported()
    {
        using var c = Connect();
        Assert.Equal("""{"return":{"qemu":{"micro":1,"minor":0,"major":5},"package":"StratoVirt-2.5.0"}}""",
            c.Execute("""{"execute":"query-version"}"""));
        using var doc = JsonDocument.Parse(c.Execute("""{"execute":"query-commands"}"""));
        var names = doc.RootElement.GetProperty("return").EnumerateArray().Select(e => e.GetProperty("name").GetString()!).ToHashSet();
        string[] served = ["qmp_capabilities", "quit", "system_reset", "system_powerdown", "query-status", "stop", "cont", "query-version", "query-commands",
            "balloon", "query-balloon", "query-cpus", "query-hotpluggable-cpus", "query-mem", "getfd", "closefd", "query-target",
            "query-kvm", "query-machines", "query-events", "qom-list-types", "device-list-properties", "query-chardev",
            "query-iothreads", "query-qmp-schema", "qom-list", "qom-get", "migrate", "query-migrate"];
        Assert.Superset(served.ToHashSet(), names);
        // What is listed answers: no listed command is CommandNotFound or "not supported".
        foreach (string name in names.Where(n => n is not ("quit" or "system_reset" or "system_powerdown")))
        {
            string reply = c.Execute($$"""{"execute":"{{name}}"}""");
            Assert.DoesNotContain("CommandNotFound", reply);
            Assert.DoesNotContain("is not supported", reply);
        }
        Assert.DoesNotContain("migrate_cancel", names);
        Assert.DoesNotContain("chardev-add", names);
    }

    [Fact]
    public void ABlockIoErrorIsSentInQemusShape()
    {
        using var c = Connect();
        _server!.Send(new MachineEvent.BlockIoError("disk1", Write: true, NoSpace: true, "No space left on device"));
        using var doc = JsonDocument.Parse(c.ReadLine()!);
        Assert.Equal("BLOCK_IO_ERROR", doc.RootElement.GetProperty("event").GetString());
        Assert.Equal("""{"device":"disk1","operation":"write","action":"report","nospace":true,"reason":"No space left on device"}""",
            doc.RootElement.GetProperty("data").GetRawText());
        _server.Send(new MachineEvent.BlockIoError("disk1", Write: false, NoSpace: false, "Input/output error"));
        using var read = JsonDocument.Parse(c.ReadLine()!);
        Assert.Equal("read", read.RootElement.GetProperty("data").GetProperty("operation").GetString());
        Assert.False(read.RootElement.GetProperty("data").GetProperty("nospace").GetBoolean());
    }

    [Fact]
    public void EventsReachTheClientOnlyAfterNegotiation()
    {
        using var c = Connect(negotiate: false);
        _server!.Send(new MachineEvent.BalloonChanged(1)); // not negotiated yet: dropped
        Assert.Equal(Empty, c.Execute(Caps));
        var sender = new Thread(() => _server.Send(new MachineEvent.BalloonChanged(268435456)));
        sender.Start();
        sender.Join();
        using var doc = JsonDocument.Parse(c.ReadLine()!);
        var root = doc.RootElement;
        Assert.Equal("BALLOON_CHANGED", root.GetProperty("event").GetString());
        Assert.Equal(268435456UL, root.GetProperty("data").GetProperty("actual").GetUInt64());
        long seconds = root.GetProperty("timestamp").GetProperty("seconds").GetInt64();
        long micros = root.GetProperty("timestamp").GetProperty("microseconds").GetInt64();
        Assert.InRange(seconds, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.InRange(micros, 0, 999_999);
        _server.SendEvent("STOP");
        Assert.StartsWith("""{"event":"STOP","timestamp":{"seconds":""", c.ReadLine());
    }

    /// <summary>Each typed machine event becomes its QMP event with QEMU's names and data.</summary>
    [Fact]
    public void MachineEventsBecomeTheirQmpEvents()
    {
        using var c = Connect();
        _server!.Send(new MachineEvent.Reset(true, ExitCause.GuestReset));
        _server.Send(new MachineEvent.Powerdown());
        _server.Send(new MachineEvent.Stopped());
        _server.Send(new MachineEvent.Resumed());
        _server.Send(new MachineEvent.DeviceDeleted("blk1"));
        _server.Send(new MachineEvent.Shutdown(false, ExitCause.QmpSystemPowerdown));
        string[] expected =
        [
            """{"event":"RESET","data":{"guest":true,"reason":"guest-reset"},""",
            """{"event":"POWERDOWN","timestamp":""",
            """{"event":"STOP","timestamp":""",
            """{"event":"RESUME","timestamp":""",
            """{"event":"DEVICE_DELETED","data":{"device":"blk1","path":"blk1"},""",
            """{"event":"SHUTDOWN","data":{"guest":false,"reason":"host-qmp-quit"},""",
        ];
        foreach (string prefix in expected) Assert.StartsWith(prefix, c.ReadLine());
    }

    [Fact]
    public void QuitSystemResetAndSystemPowerdownReplyThenAskTheMachine()
    {
        using var c = Connect();
        Assert.Equal("""{"return":{},"id":9}""", c.Execute("""{"execute":"quit","id":9}"""));
        Assert.True(WaitFor(() => Volatile.Read(ref _machine.QuitCalls) == 1));
        Assert.Equal("""{"return":{},"id":10}""", c.Execute("""{"execute":"system_reset","id":10}"""));
        Assert.True(WaitFor(() => Volatile.Read(ref _machine.ResetCalls) == 1));
        Assert.Equal("""{"return":{},"id":11}""", c.Execute("""{"execute":"system_powerdown","id":11}"""));
        Assert.True(WaitFor(() => Volatile.Read(ref _machine.PowerdownCalls) == 1));
        // The machine raises SHUTDOWN as it ends (VirtualMachine.Run), not the server: nothing more arrives here.
        Assert.True(c.IsQuietFor(200));
        string events = c.Execute("""{"execute":"query-events"}""");
        Assert.Contains("\"name\":\"RESET\"", events);
        Assert.Contains("\"name\":\"POWERDOWN\"", events);
    }

    private static void NegotiateByHand(EventLoop loop, QmpServer server, Client c)
    {
        for (int i = 0; i < 50 && !server.HasClient; i++) loop.RunOnce(100);
        Assert.Equal(Greeting, c.ReadLine());
        c.Send(Caps + "\n");
        loop.RunOnce(1000);
        Assert.Equal(Empty, c.ReadLine());
    }

    /// <summary>As the machine ends, its loop no longer runs: FlushOutput alone must get the last events to a client
    /// that reads late, and must give up on one that never reads.</summary>
    [Fact]
    public void FlushOutputDeliversTheBacklogWithoutTheLoopAndIsBounded()
    {
        using var loop = new EventLoop("qmp-flush-test"); // never started: pumped by hand until the backlog exists
        string flushPath = Path.Combine(_dir.Path, "flush.sock");
        using var server = new QmpServer([new MonitorEndpoint.Unix(flushPath)], loop, _machine);
        using var c = new Client(flushPath);
        NegotiateByHand(loop, server, c);
        // About 2 MiB of events: far more than the socket buffer holds, less than the disconnect limit.
        string filler = new('x', 1000);
        for (int i = 0; i < 2000; i++)
            server.SendEvent("FILL", new ShutdownEventData(false, filler));
        server.SendEvent("LAST");
        int lines = 0;
        bool sawLast = false;
        var reader = new Thread(() =>
        {
            Thread.Sleep(300);
            for (string? line; (line = c.ReadLine()) is not null;)
            {
                lines++;
                if (line.StartsWith("""{"event":"LAST",""", StringComparison.Ordinal)) { sawLast = true; return; }
            }
        });
        reader.Start();
        server.FlushOutput(TimeSpan.FromSeconds(10));
        Assert.True(reader.Join(10_000));
        Assert.True(sawLast);
        Assert.Equal(2001, lines);

        // A client that never reads: FlushOutput returns after its bound.
        string stuckPath = Path.Combine(_dir.Path, "stuck.sock");
        using var stuck = new QmpServer([new MonitorEndpoint.Unix(stuckPath)], loop, _machine);
        using var s = new Client(stuckPath);
        NegotiateByHand(loop, stuck, s);
        for (int i = 0; i < 2000; i++)
            stuck.SendEvent("FILL", new ShutdownEventData(false, filler));
        var sw = Stopwatch.StartNew();
        stuck.FlushOutput(TimeSpan.FromMilliseconds(300));
        Assert.InRange(sw.ElapsedMilliseconds, 250, 3000);
    }

    [Fact]
    public void OverlongRequestGetsAnErrorAndTheConnectionCloses()
    {
        using var c = Connect();
        c.Send("{\"execute\":\"" + new string('x', QmpServer.MaxRequestBytes) + "\"}\n");
        Assert.Contains("longer than 65536 bytes", c.ReadLine());
        Assert.Null(c.ReadLine());
        Assert.True(WaitFor(() => !_server!.HasClient));
    }

    [Fact]
    public void SocketIsPrivateAndRemovedOnDispose()
    {
        Start();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_path));
        _server!.Dispose();
        Assert.False(File.Exists(_path));
        Assert.Throws<SocketException>(() => new Client(_path));
    }

    [Fact]
    public void StaleSocketIsReplaced()
    {
        UnixSocket.Listen(_path, 0x1ff).Dispose(); // closed without unlinking: a stale socket file
        Assert.True(File.Exists(_path));
        using var c = Connect();
        Assert.Equal("""{"return":{"actual":1073741824}}""", c.Execute("""{"execute":"query-balloon"}"""));
    }

    [Fact]
    public void LiveSocketRegularFileAndLongPathAreRefused()
    {
        using (var live = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            live.Bind(new UnixDomainSocketEndPoint(_path));
            live.Listen();
            var e = Assert.Throws<SysException>(() => new QmpServer([new MonitorEndpoint.Unix(_path)], _loop, _machine));
            Assert.Equal(Libc.EADDRINUSE, e.Errno);
        }
        File.Delete(_path);
        File.WriteAllText(_path, "not a socket");
        Assert.Contains("is not a socket", Assert.Throws<SysException>(() => new QmpServer([new MonitorEndpoint.Unix(_path)], _loop, _machine)).Message);
        Assert.Equal("not a socket", File.ReadAllText(_path));
        string longPath = Path.Combine(_dir.Path, new string('s', 120));
        Assert.Equal(Libc.ENAMETOOLONG, Assert.Throws<SysException>(() => new QmpServer([new MonitorEndpoint.Unix(longPath)], _loop, _machine)).Errno);
    }

    [Fact]
    public void SecondClientWaitsUntilTheFirstLeavesThenReconnectWorks()
    {
        var first = Connect();
        using var second = new Client(_path);
        Assert.True(second.IsQuietFor(200)); // queued in the backlog, no greeting yet
        first.Send("{\"execute\":\"query-"); // leaves mid-command
        first.Dispose();
        Assert.Equal(Greeting, second.ReadLine());
        _server!.SendEvent("STOP"); // a fresh session: no command yet, so no events
        Assert.True(second.IsQuietFor(100));
        Assert.Equal("""{"return":{"actual":1073741824}}""", second.Execute("""{"execute":"query-balloon"}"""));
        second.Dispose();
        Assert.True(WaitFor(() => !_server!.HasClient));
        using var third = Connect();
        Assert.Equal("""{"return":{"actual":1073741824}}""", third.Execute("""{"execute":"query-balloon"}"""));
    }

    [Fact]
    public void AClientThatLeavesBeforeItsRepliesLeavesTheServerServingTheNext()
    {
        // Whole commands, then gone before reading a reply: the replies hit a closed socket (EPIPE or ECONNRESET).
        for (int i = 0; i < 3; i++)
        {
            var c = Connect();
            c.Send(string.Concat(Enumerable.Repeat("{\"execute\":\"query-status\"}\n", 50)));
            c.Dispose();
            Assert.True(WaitFor(() => !_server!.HasClient));
        }
        using var next = Connect();
        Assert.Equal("""{"return":{"actual":1073741824}}""", next.Execute("""{"execute":"query-balloon"}"""));
    }

    [Theory]
    [InlineData("unix:/run/qmp.sock,server,nowait", "unix:/run/qmp.sock")]
    [InlineData("unix:/tmp/a b,nowait,server", "unix:/tmp/a b")]
    [InlineData("tcp:127.0.0.1:4444,server,nowait", "tcp:127.0.0.1:4444")]
    [InlineData("tcp:[::1]:4444,server,nowait", "tcp:[::1]:4444")]
    [InlineData("tcp:0.0.0.0:0,server,nowait", "tcp:0.0.0.0:0")]
    public void ParsesUpstreamQmpOption(string value, string endpoint) =>
        Assert.Equal(endpoint, MonitorEndpoint.ParseQmp(value).ToString());

    [Theory]
    [InlineData("unix:/run/qmp.sock", "'server' and 'nowait' are required")]
    [InlineData("unix:,server,nowait", "the socket path is empty")]
    [InlineData("unix:/run/qmp.sock,server,nowait,bogus", "unknown parameter 'bogus'")]
    [InlineData("tcp:localhost:4444,server,nowait", "invalid host 'localhost'")]
    [InlineData("tcp:127.1:4444,server,nowait", "invalid host '127.1'")]
    [InlineData("tcp:127.0.0.1:65536,server,nowait", "invalid port '65536'")]
    [InlineData("tcp:127.0.0.1:-1,server,nowait", "invalid port '-1'")]
    [InlineData("tcp:127.0.0.1,server,nowait", "is not <ip>:<port>")]
    [InlineData("vsock:3:4444,server,nowait", "neither unix:<path> nor tcp:<ip>:<port>")]
    public void RejectsBadQmpOptions(string value, string message) =>
        Assert.Contains(message, Assert.Throws<FormatException>(() => MonitorEndpoint.ParseQmp(value)).Message);

    [Fact]
    public void LabClientTalksToTheServer()
    {
        string exe = Path.Combine(_dir.Path, "qmp-send");
        var (rc, output) = Run("gcc", "-static", "-O2", "-o", exe, Path.Combine(VmmProcess.RepoRoot, "scripts/lab/qmp-send.c"));
        Assert.True(rc == 0, output);
        Start();
        (rc, output) = Run(exe, _path, """{"execute":"balloon","arguments":{"value":536870912}}""",
            """{"execute":"query-balloon","id":1}""");
        Assert.Equal(0, rc);
        Assert.Equal(Empty + "\n" + """{"return":{"actual":1073741824},"id":1}""" + "\n", output);
        Assert.Equal(536870912UL, _machine.Target);
        Assert.True(WaitFor(() => !_server!.HasClient));
        (rc, output) = Run(exe, _path, """{"execute":"xyz"}""");
        Assert.Equal(1, rc);
        Assert.Contains("CommandNotFound", output);

        // --wait-event: after its commands it prints lines until the named event (sent here until it has gone).
        Assert.True(WaitFor(() => !_server!.HasClient));
        using var done = new ManualResetEventSlim();
        var sender = new Thread(() =>
        {
            while (!done.Wait(50))
            {
                _server!.SendEvent("RESUME");
                _server.SendEvent("STOP");
            }
        });
        sender.Start();
        (rc, output) = Run(exe, _path, """{"execute":"query-status"}""", "--wait-event", "STOP");
        done.Set();
        sender.Join();
        Assert.Equal(0, rc);
        var lines = output.TrimEnd().Split('\n');
        Assert.Contains(lines, l => l.StartsWith("""{"return":{"running":true""", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("""{"event":"STOP",""", StringComparison.Ordinal));
    }

    private static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), $"{file} did not finish");
        return (p.ExitCode, stdout + stderr.Result);
    }

    [Fact]
    public void ProbesAndQueryCpusAnswerLikeUpstream()
    {
        using var c = Connect();
        Assert.Equal("""{"return":{"arch":"x86_64"}}""", c.Execute("""{"execute":"query-target"}"""));
        Assert.Equal("""{"return":{"enabled":true,"present":true}}""", c.Execute("""{"execute":"query-kvm"}"""));
        Assert.Contains("\"name\":\"microvm\"", c.Execute("""{"execute":"query-machines"}"""));
        Assert.Contains("\"name\":\"SHUTDOWN\"", c.Execute("""{"execute":"query-events"}"""));
        string cpus = c.Execute("""{"execute":"query-cpus","id":7}""");
        Assert.StartsWith("""{"return":[{"CPU":0,"current":true,"halted":false,"qom_path":"/machine/unattached/device[0]","thread_id":4242,""", cpus);
        Assert.Contains("\"thread_id\":4243", cpus);
        Assert.EndsWith(",\"id\":7}", cpus);
    }

    /// <summary>10,000 generated malformed requests, each framed so that it ends (a non-brace line, or a balanced
    /// object with bad content): every one gets an error reply, and the server still answers afterwards.</summary>
    [Fact]
    public void TenThousandMalformedInputsEachGetAnErrorAndTheServerKeepsAnswering()
    {
        Start(rateLimit: 0); // this test is about malformed input; RequestsBeyondTheRateAreThrottled covers the limit
        using var c = Connect();
        var random = new Random(20261122);
        const string Junk = "abcxyz0123456789 :,.-_+*/\\'";
        string Noise(int max)
        {
            var chars = new char[random.Next(1, max)];
            for (int i = 0; i < chars.Length; i++) chars[i] = Junk[random.Next(Junk.Length)];
            return new string(chars);
        }
        string[] shapes =
        [
            "{\"execute\":123}", "{\"execute\":null}", "{\"arguments\":{}}", "{\"execute\":\"balloon\",\"arguments\":[1]}",
            "{\"execute\":\"balloon\",\"arguments\":{\"value\":\"big\"}}", "{\"execute\":\"balloon\",\"arguments\":{\"value\":-1}}",
            "{\"execute\":\"balloon\",\"arguments\":{\"value\":1,\"extra\":2}}", "{\"execute\":\"balloon\"}",
            "{\"execute\":\"no-such-command\"}", "{\"execute\":\"\"}", "{\"execute\":\"q\\u0000\"}", "{ \"}\" : ",
        ];
        int sent = 0;
        for (int batch = 0; batch < 20; batch++)
        {
            var text = new StringBuilder();
            for (int i = 0; i < 500; i++, sent++)
            {
                text.Append((sent % 4) switch
                {
                    0 => "x" + Noise(80) + "\n",                                      // not JSON at all
                    1 => "{" + Noise(60).Replace("\\", "") + "}",                      // braces around garbage
                    2 => shapes[random.Next(shapes.Length - 1)],                       // well-formed, wrong content
                    _ => "{\"execute\":\"" + Noise(20).Replace("\\", "") + "\",\"id\":" + sent + "}", // unknown command
                });
            }
            c.Send(text.ToString());
            for (int i = 0; i < 500; i++)
            {
                string? reply = c.ReadLine();
                Assert.NotNull(reply);
                Assert.StartsWith("{\"error\":{\"class\":", reply);
            }
        }
        Assert.Equal(10_000, sent);
        Assert.Equal("""{"return":{"running":true,"singlestep":false,"status":"running"},"id":"last"}""",
            c.Execute("""{"execute":"query-status","id":"last"}"""));
    }

    [Fact]
    public void StopAndContChangeTheStatus()
    {
        using var c = Connect();
        Assert.Equal(Empty, c.Execute("""{"execute":"stop"}"""));
        Assert.Equal("""{"return":{"running":false,"singlestep":false,"status":"paused"}}""", c.Execute("""{"execute":"query-status"}"""));
        Assert.Equal(Empty, c.Execute("""{"execute":"cont"}"""));
        Assert.Equal("""{"return":{"running":true,"singlestep":false,"status":"running"}}""", c.Execute("""{"execute":"query-status"}"""));
    }
}
