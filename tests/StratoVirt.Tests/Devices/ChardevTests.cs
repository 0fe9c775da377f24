using System.IO.Pipes;
using System.Net.Sockets;
using System.Text;
using Microsoft.Win32.SafeHandles;
using StratoVirt.Devices.Chardev;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Devices;

/// <summary>A unix-socket client for chardev tests (System.Net.Sockets, as a user's tool would connect).</summary>
internal sealed class UnixClient : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);

    public UnixClient(string path)
    {
        _socket.ReceiveTimeout = 5000;
        _socket.Connect(new UnixDomainSocketEndPoint(path));
    }

    public void Send(string text) => _socket.Send(Encoding.ASCII.GetBytes(text));

    /// <summary>Receives exactly <paramref name="count"/> bytes (or fails after the receive timeout).</summary>
    public string Receive(int count)
    {
        var buffer = new byte[count];
        int got = 0;
        while (got < count)
        {
            int n = _socket.Receive(buffer, got, count - got, SocketFlags.None);
            if (n == 0) break;
            got += n;
        }
        return Encoding.ASCII.GetString(buffer, 0, got);
    }

    public void Dispose() => _socket.Dispose();
}

[Trait("Level", "Unit")]
public sealed class ChardevTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly EventLoop _loop = new("chardev-test");
    private readonly StringBuilder _input = new();

    public void Dispose()
    {
        _loop.Dispose();
        _dir.Dispose();
    }

    private string PathOf(string name) => Path.Combine(_dir.Path, name);

    private bool PumpUntil(Func<bool> done) => _loop.RunUntil(done);

    /// <summary>Attaches like a frontend that always has room: reads everything into <see cref="_input"/>.</summary>
    private void AttachReader(Chardev chardev) => chardev.Attach(_loop, () =>
    {
        var buffer = new byte[7]; // small, so one notification needs several reads
        int n;
        while ((n = chardev.Read(buffer)) > 0) _input.Append(Encoding.ASCII.GetString(buffer, 0, n));
    });

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    [Fact]
    public void FileChardevWritesOutputAndHasNoInput()
    {
        string path = PathOf("out.log");
        File.WriteAllText(path, "old contents");
        using (var file = new FileChardev("f0", path))
        {
            Assert.Equal(-1, file.InputFd);
            file.Write(Ascii("hello "));
            file.Write(Ascii("world"));
            Assert.Equal(0, file.Read(new byte[8]));
        }
        Assert.Equal("hello world", File.ReadAllText(path)); // truncated first
        using (var file = new FileChardev("f0", path, append: true)) file.Write(Ascii("!"));
        Assert.Equal("hello world!", File.ReadAllText(path));
    }

    [Fact]
    public void FileChardevThatCannotBeCreatedNamesTheChardevAndPath()
    {
        string path = PathOf("missing-dir/out.log");
        var e = Assert.Throws<ChardevException>(() => new FileChardev("f1", path));
        Assert.Contains("'f1'", e.Message);
        Assert.Contains(path, e.Message);
        Assert.Contains("No such file", e.Message);
    }

    [Fact]
    public void SocketChardevExchangesBytesBothWaysAndAcceptsAReconnectingClient()
    {
        string path = PathOf("console.sock");
        using var chardev = new SocketChardev("s0", path);
        AttachReader(chardev);
        chardev.Write(Ascii("lost"));
        Assert.Equal(4, chardev.DroppedBytes); // no client yet

        using (var client = new UnixClient(path))
        {
            Assert.True(PumpUntil(() => chardev.Connected));
            chardev.Write(Ascii("to client"));
            Assert.Equal("to client", client.Receive(9));
            client.Send("from client, longer than one read");
            Assert.True(PumpUntil(() => _input.ToString() == "from client, longer than one read"));
        }
        Assert.True(PumpUntil(() => !chardev.Connected));
        Assert.False(chardev.InputWatched);

        _input.Clear();
        using (var again = new UnixClient(path))
        {
            Assert.True(PumpUntil(() => chardev.Connected));
            again.Send("second");
            Assert.True(PumpUntil(() => _input.ToString() == "second"));
            chardev.Write(Ascii("back"));
            Assert.Equal("back", again.Receive(4));
        }
        chardev.Dispose();
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void SocketChardevServesOneClientAtATime()
    {
        string path = PathOf("one.sock");
        using var chardev = new SocketChardev("s1", path);
        AttachReader(chardev);
        using var first = new UnixClient(path);
        Assert.True(PumpUntil(() => chardev.Connected));
        using (var second = new UnixClient(path)) // waits in the backlog
        {
            second.Send("queued");
            first.Send("first");
            Assert.True(PumpUntil(() => _input.ToString() == "first"));
            _loop.RunOnce(50);
            Assert.Equal("first", _input.ToString());
            first.Dispose();
            Assert.True(PumpUntil(() => _input.ToString() == "firstqueued")); // taken once the first left
        }
    }

    [Fact]
    public void SocketChardevDropsOutputForAClientThatDoesNotRead()
    {
        string path = PathOf("stuck.sock");
        using var chardev = new SocketChardev("s2", path);
        AttachReader(chardev);
        using var client = new UnixClient(path);
        Assert.True(PumpUntil(() => chardev.Connected));
        var chunk = new byte[64 * 1024];
        var started = Environment.TickCount64;
        for (int i = 0; i < 64 && chardev.DroppedBytes == 0; i++) chardev.Write(chunk);
        Assert.True(chardev.DroppedBytes > 0);
        chardev.Write(chunk); // stalled: drops at once
        Assert.True(Environment.TickCount64 - started < 3000);
        Assert.True(chardev.Connected);
    }

    [Fact]
    public void SocketPathErrorsAreClear()
    {
        string tooLong = PathOf(new string('x', 120));
        var e = Assert.Throws<ChardevException>(() => new SocketChardev("s3", tooLong));
        Assert.Contains("at most 107", e.Message);

        string path = PathOf("busy.sock");
        using (new SocketChardev("s4", path))
        {
            e = Assert.Throws<ChardevException>(() => new SocketChardev("s5", path));
            Assert.Contains("'s5'", e.Message);
            Assert.Contains("in use", e.Message);
        }

        string plain = _dir.Write("plain.txt", [1, 2, 3]);
        e = Assert.Throws<ChardevException>(() => new SocketChardev("s6", plain));
        Assert.Contains("is not a socket", e.Message);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(plain)); // never removed
    }

    /// <summary>Binds a unix socket at <paramref name="path"/> and closes it, leaving the file (System.Net.Sockets
    /// would remove it).</summary>
    private static unsafe void BindAndClose(string path)
    {
        int fd = SysException.Check(Libc.Socket(Libc.AF_UNIX, Libc.SOCK_STREAM, 0), "socket");
        using var socket = new FileDescriptor(fd);
        var addr = new SockAddrUn { Family = Libc.AF_UNIX };
        Encoding.UTF8.GetBytes(path, new Span<byte>(addr.Path, SockAddrUn.PathCapacity - 1));
        SysException.Check(Libc.Bind(fd, &addr, (uint)sizeof(SockAddrUn)), "bind");
    }

    [Fact]
    public void AStaleSocketFileIsReplaced()
    {
        string path = PathOf("stale.sock");
        BindAndClose(path); // a socket file nobody listens on, as a VMM that died leaves it
        Assert.True(File.Exists(path));
        using var chardev = new SocketChardev("s7", path);
        AttachReader(chardev);
        using var client = new UnixClient(path);
        Assert.True(PumpUntil(() => chardev.Connected));
    }

    [Fact]
    public void InputWaitsInTheHostFdWhileDisabled()
    {
        string path = PathOf("paused.sock");
        using var chardev = new SocketChardev("s8", path);
        AttachReader(chardev);
        using var client = new UnixClient(path);
        Assert.True(PumpUntil(() => chardev.Connected));
        chardev.SetInputEnabled(false);
        Assert.False(chardev.InputWatched);
        client.Send("held");
        for (int i = 0; i < 5; i++) _loop.RunOnce(20);
        Assert.Equal("", _input.ToString());
        chardev.SetInputEnabled(true);
        Assert.True(PumpUntil(() => _input.ToString() == "held"));
    }

    [Fact]
    public async Task PtyChardevExchangesBytesWithItsSlave()
    {
        using var pty = new PtyChardev("p0");
        Assert.StartsWith("/dev/pts/", pty.PtyPath);
        AttachReader(pty);
        int fd = SysException.Check(Libc.Open(pty.PtyPath, Libc.O_RDWR | Libc.O_NOCTTY | Libc.O_CLOEXEC, 0), "open slave");
        using var slave = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.ReadWrite, 1);

        pty.Write(Ascii("guest\nout\r\n")); // raw: no newline translation, no echo back
        var buffer = new byte[64];
        var got = new StringBuilder();
        while (got.Length < 11)
        {
            int n = await Task.Run(() => slave.Read(buffer)).WaitAsync(TimeSpan.FromSeconds(5));
            got.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        Assert.Equal("guest\nout\r\n", got.ToString());

        slave.Write(Ascii("typed\r"));
        slave.Flush();
        Assert.True(PumpUntil(() => _input.ToString() == "typed\r"));
        _loop.RunOnce(50);
        Assert.Equal("typed\r", _input.ToString()); // nothing echoed into the input
    }

    [Fact]
    public void StdioChardevReadsUntilEndOfInputAndWritesOutput()
    {
        using var stdin = new AnonymousPipeServerStream(PipeDirection.Out);
        using var stdinReader = new AnonymousPipeClientStream(PipeDirection.In, stdin.ClientSafePipeHandle);
        using var stdout = new AnonymousPipeServerStream(PipeDirection.In);
        using var stdoutWriter = new AnonymousPipeClientStream(PipeDirection.Out, stdout.ClientSafePipeHandle);
        using var stdio = new StdioChardev("c0", (int)stdinReader.SafePipeHandle.DangerousGetHandle(),
            (int)stdoutWriter.SafePipeHandle.DangerousGetHandle(), rawTerminal: false);
        Assert.False(stdio.RawMode);
        AttachReader(stdio);

        stdio.Write(Ascii("console"));
        var buffer = new byte[7];
        stdout.ReadExactly(buffer);
        Assert.Equal("console", Encoding.ASCII.GetString(buffer));

        stdin.Write(Ascii("keys"));
        stdin.Flush();
        Assert.True(PumpUntil(() => _input.ToString() == "keys"));
        Assert.True(stdio.InputWatched);
        stdin.Dispose(); // end of input
        Assert.True(PumpUntil(() => !stdio.InputWatched));
        Assert.Equal(-1, stdio.InputFd);
    }

    [Fact]
    public void AChardevServesOneDevice()
    {
        using var file = new FileChardev("f2", PathOf("x"));
        var owner = new object();
        file.Claim(owner);
        file.Claim(owner);
        var e = Assert.Throws<ChardevException>(() => file.Claim(new object()));
        Assert.Contains("'f2' is already used", e.Message);
    }
}
