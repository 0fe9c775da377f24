using StratoVirt.Sys;

namespace StratoVirt.Devices.Chardev;

/// <summary>
/// -chardev socket,id=X,path=P,server,nowait: a unix stream socket the VMM listens on. One client at a time: while
/// one is connected the listener is not watched (a second client waits in the backlog until the first leaves).
/// Input comes from the client; output goes to it, and is dropped (counted in <see cref="Chardev.DroppedBytes"/>)
/// while no client is connected. A client that disconnects can connect again. The socket file is removed on
/// <see cref="Chardev.Dispose"/>.
/// </summary>
public sealed class SocketChardev : Chardev
{
    private readonly FileDescriptor _listener;
    private FileDescriptor? _client;
    private ulong _listenToken;
    private bool _listenWatched;
    private bool _closed;

    /// <summary>Creates and listens on <paramref name="path"/>. A stale socket file (nobody listening) is replaced.</summary>
    /// <exception cref="ChardevException">The path is too long, in use, not a socket, or cannot be bound.</exception>
    public SocketChardev(string id, string path) : base(id)
    {
        Path = path;
        try { _listener = UnixSocket.Listen(path, backlog: 1); }
        catch (SysException e) { throw new ChardevException($"chardev '{id}': {e.Message}"); }
    }

    public string Path { get; }

    /// <summary>Whether a client is connected now.</summary>
    public bool Connected
    {
        get { lock (Sync) return _client is not null; }
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
        _client = UnixSocket.Accept(_listener, out int errno);
        if (_client is null)
        {
            if (errno is not (Libc.EAGAIN or Libc.ECONNRESET)) // else the client gave up meanwhile
                Log.Warn($"chardev '{Id}': accept on {Path}: {Libc.ErrorText(errno)}");
            return;
        }
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
