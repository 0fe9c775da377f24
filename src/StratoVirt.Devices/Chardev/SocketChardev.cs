using System.Text;
using StratoVirt.Sys;

namespace StratoVirt.Devices.Chardev;

/// <summary>
/// -chardev socket,id=X,path=P,server,nowait: a unix stream socket the VMM listens on. One client at a time: while
/// one is connected the listener is not watched (a second client waits in the backlog until the first leaves).
/// Input comes from the client; output goes to it, and is dropped (counted in <see cref="Chardev.DroppedBytes"/>)
/// while no client is connected. A client that disconnects can connect again. The socket file is removed on
/// <see cref="Chardev.Dispose"/>.
/// </summary>
public sealed unsafe class SocketChardev : Chardev
{
    private readonly FileDescriptor _listener;
    private FileDescriptor? _client;
    private ulong _listenToken;
    private bool _listenWatched;
    private bool _closed;

    /// <summary>Creates and listens on <paramref name="path"/>. A stale socket file (nobody listening) is replaced.</summary>
    /// <exception cref="ChardevException">The path is too long, in use, or cannot be bound.</exception>
    public SocketChardev(string id, string path) : base(id)
    {
        Path = path;
        var addr = Address(id, path);
        int fd = Libc.Socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0) throw new ChardevException($"chardev '{id}': {SysException.Last("socket").Message}");
        _listener = new FileDescriptor(fd);
        try
        {
            // addr is a stack local the calls cannot outlive.
            if (Libc.Bind(fd, &addr, (uint)sizeof(SockAddrUn)) != 0)
            {
                var e = SysException.Last($"bind {path}");
                if (e.Errno != Libc.EADDRINUSE) throw new ChardevException($"chardev '{id}': cannot create socket: {e.Message}");
                if (!IsStaleSocket(path, addr))
                    throw new ChardevException($"chardev '{id}': socket path {path} is in use (another process listens on it, or it is not a socket)");
                Libc.Unlink(path);
                if (Libc.Bind(fd, &addr, (uint)sizeof(SockAddrUn)) != 0)
                    throw new ChardevException($"chardev '{id}': cannot create socket: {SysException.Last($"bind {path}").Message}");
            }
            if (Libc.Listen(fd, 1) != 0)
            {
                var e = SysException.Last($"listen {path}");
                Libc.Unlink(path);
                throw new ChardevException($"chardev '{id}': {e.Message}");
            }
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>Whether a client is connected now.</summary>
    public bool Connected
    {
        get { lock (Sync) return _client is not null; }
    }

    private static SockAddrUn Address(string id, string path)
    {
        int length = Encoding.UTF8.GetByteCount(path);
        if (length == 0) throw new ChardevException($"chardev '{id}': the socket path is empty");
        if (length >= SockAddrUn.PathCapacity)
            throw new ChardevException(
                $"chardev '{id}': socket path {path} is {length} bytes long; a unix socket path holds at most {SockAddrUn.PathCapacity - 1}");
        var addr = new SockAddrUn { Family = Libc.AF_UNIX };
        // Path is a fixed 108-byte field of a local; length < 108 was checked, so the NUL terminator fits too.
        Encoding.UTF8.GetBytes(path, new Span<byte>(addr.Path, SockAddrUn.PathCapacity));
        return addr;
    }

    /// <summary>Whether <paramref name="path"/> is a socket file nobody listens on (left by a VMM that died).</summary>
    private static bool IsStaleSocket(string path, SockAddrUn addr)
    {
        int pfd = Libc.Open(path, Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
        if (pfd < 0) return false;
        using (var f = new FileDescriptor(pfd))
        {
            Stat st;
            // st is a stack local fstat fills.
            if (Libc.FStat(f.Fd, &st) != 0 || (st.Mode & Libc.S_IFMT) != Libc.S_IFSOCK) return false;
        }
        int probe = Libc.Socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
        if (probe < 0) return false;
        using var p = new FileDescriptor(probe);
        // addr is a copy on this frame.
        if (Libc.Connect(p.Fd, &addr, (uint)sizeof(SockAddrUn)) == 0) return false;
        return System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Libc.ECONNREFUSED;
    }

    public override int InputFd => _client?.Fd ?? -1;

    protected override void OnAttach(EventLoop loop) => UpdateListenerWatch();

    /// <summary>Watches the listener while attached and no client is connected; call under Sync.</summary>
    private void UpdateListenerWatch()
    {
        bool want = Loop is not null && _client is null && !_closed;
        if (want == _listenWatched) return;
        if (want) _listenToken = Loop!.Add(_listener.Fd, Libc.EPOLLIN, OnListenerReady);
        else Loop!.Remove(_listenToken);
        _listenWatched = want;
    }

    private void OnListenerReady(uint events)
    {
        lock (Sync) Accept();
    }

    /// <summary>Takes a waiting client, if there is one and none is connected; call under Sync.</summary>
    private void Accept()
    {
        if (_client is not null || _closed) return;
        int fd = Libc.Accept4(_listener.Fd, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
        if (fd < 0) return; // EAGAIN: the client gave up meanwhile
        _client = new FileDescriptor(fd);
        Log.Info($"chardev '{Id}': client connected on {Path}");
        UpdateListenerWatch();
        UpdateInputWatch();
    }

    /// <summary>Drops the client; the listener is watched again. Call under Sync.</summary>
    private void Disconnect()
    {
        var client = _client;
        if (client is null) return;
        _client = null;
        UpdateInputWatch(); // removes the watch while the fd is still open
        client.Dispose();
        Log.Info($"chardev '{Id}': client disconnected from {Path}");
        UpdateListenerWatch();
    }

    public override int Read(Span<byte> buffer)
    {
        lock (Sync)
        {
            if (_client is null) return 0;
            int n = ReadFd(_client.Fd, buffer, blockingFd: false, out int errno);
            if (n > 0) return n;
            if (n == 0 || errno != 0) Disconnect();
            return 0;
        }
    }

    public override void Write(ReadOnlySpan<byte> data)
    {
        lock (Sync)
        {
            if (_client is null)
            {
                CountDropped(data.Length);
                return;
            }
            if (!WriteFd(_client.Fd, data, socket: true)) Disconnect();
        }
    }

    protected override void Close()
    {
        _closed = true;
        try { UpdateListenerWatch(); }
        catch (SysException) { } // the loop was disposed first
        _client?.Dispose();
        _client = null;
        _listener.Dispose();
        Libc.Unlink(Path);
    }
}
