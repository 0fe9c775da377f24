using System.Text.Json.Serialization.Metadata;
using StratoVirt.Sys;

namespace StratoVirt.Machine.Qmp;

/// <summary>
/// A QMP server on a Unix socket, served from an <see cref="EventLoop"/> the machine runs.
/// <para>One client at a time: while a client is connected the listening socket is taken off the loop, so
/// further connections wait in the kernel's backlog and get their greeting once the current client leaves.</para>
/// <para>Each client gets the greeting, must send <c>qmp_capabilities</c> first (other commands get
/// CommandNotFound until then), and receives events only after that. Requests may be split across reads or
/// come several per read; malformed JSON gets a GenericError and the connection stays open; a request
/// longer than <see cref="MaxRequestBytes"/> gets an error and the connection is closed.</para>
/// <para><see cref="SendEvent{T}"/> may be called from any thread.</para>
/// </summary>
public sealed class QmpServer : IDisposable
{
    public const int MaxRequestBytes = 64 * 1024;

    /// <summary>Queued output beyond this means the client stopped reading; it is disconnected.</summary>
    private const int MaxPendingOutput = 4 << 20;

    /// <summary>What the greeting and query-version report: QEMU 5.0.1, as upstream does.</summary>
    public static readonly QmpVersion Version = new(new QemuVersion(1, 0, 5), "StratoVirt-2.5.0");

    private readonly string _path;
    private readonly EventLoop _loop;
    private readonly QmpDispatcher _dispatcher;
    private readonly FileDescriptor _listener;
    private readonly Lock _lock = new();
    private readonly byte[] _readBuffer = new byte[4096];
    private ulong _listenToken;
    private Client? _client;
    private bool _disposed;

    private sealed class Client(FileDescriptor fd)
    {
        public FileDescriptor Fd { get; } = fd;
        public ulong Token;
        public bool WantsWrite;
        public readonly QmpSession Session = new();
        public readonly QmpFramer Framer = new(MaxRequestBytes);
        public readonly ByteQueue Output = new();
    }

    /// <summary>Binds <paramref name="path"/> (mode 0600; a stale socket there is replaced) and starts accepting
    /// on <paramref name="loop"/>. Throws <see cref="SysException"/> when the path is too long, is another kind
    /// of file, or has a live listener.</summary>
    public QmpServer(string path, EventLoop loop, IQmpCommands commands)
    {
        _path = path;
        _loop = loop;
        _dispatcher = new QmpDispatcher(commands);
        _listener = UnixSocket.Listen(path, mode: 0x180 /* 0600 */);
        try
        {
            _listenToken = loop.Add(_listener.Fd, Libc.EPOLLIN, _ => OnAccept());
        }
        catch
        {
            _listener.Dispose();
            Libc.Unlink(path);
            throw;
        }
    }

    public string Path => _path;

    /// <summary>True while a client is connected.</summary>
    public bool HasClient
    {
        get { lock (_lock) return _client is not null; }
    }

    /// <summary>Parses upstream's <c>-qmp unix:&lt;path&gt;,server,nowait</c> and returns the path.</summary>
    public static string ParseOption(string value)
    {
        if (!value.StartsWith("unix:", StringComparison.Ordinal))
            throw new FormatException($"-qmp {value}: only unix:<path>,server,nowait is supported");
        string[] parts = value["unix:".Length..].Split(',');
        string path = parts[0];
        if (path.Length == 0) throw new FormatException($"-qmp {value}: the socket path is empty");
        bool server = false, nowait = false;
        foreach (string p in parts.Skip(1))
        {
            if (p == "server") server = true;
            else if (p == "nowait") nowait = true;
            else throw new FormatException($"-qmp {value}: unknown parameter '{p}'");
        }
        if (!server || !nowait) throw new FormatException($"-qmp {value}: 'server' and 'nowait' are required");
        return path;
    }

    /// <summary>Sends <c>{"event":name,"data":data,"timestamp":...}</c> to the client, if one has negotiated
    /// capabilities; otherwise the event is dropped. Any thread.</summary>
    public void SendEvent<T>(string name, T? data, JsonTypeInfo<T> dataInfo)
    {
        lock (_lock)
        {
            if (_disposed || _client is not { Session.Negotiated: true } client) return;
            Queue(client, QmpDispatcher.Event(name, data, dataInfo, DateTimeOffset.UtcNow));
        }
    }

    /// <summary>An event without data.</summary>
    public void SendEvent(string name) => SendEvent<QmpEmpty>(name, null, QmpJsonContext.Default.QmpEmpty);

    /// <summary>BALLOON_CHANGED with the guest's memory size as the balloon now leaves it.</summary>
    public void SendBalloonChanged(ulong actualBytes) =>
        SendEvent("BALLOON_CHANGED", new BalloonInfo(actualBytes), QmpJsonContext.Default.BalloonInfo);

    /// <summary>Waits up to <paramref name="bound"/> until the client has taken every queued reply and event (the
    /// machine calls this as it ends, so the last ones are not lost when the process exits). Any thread.</summary>
    public void FlushOutput(TimeSpan bound)
    {
        long deadline = Environment.TickCount64 + (long)bound.TotalMilliseconds;
        lock (_lock)
        {
            while (!_disposed && _client is { } client && client.Output.Count > 0)
            {
                Flush(client);
                if (_client != client || client.Output.Count == 0) return;
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    Log.Warn($"qmp: the client did not take its last {client.Output.Count} bytes within {bound.TotalMilliseconds} ms");
                    return;
                }
                UnixSocket.WaitWritable(client.Fd.Fd, (int)left);
            }
        }
    }

    private void OnAccept()
    {
        lock (_lock)
        {
            if (_disposed || _client is not null) return;
            var fd = UnixSocket.Accept(_listener, out int errno);
            if (fd is null)
            {
                if (errno is not (Libc.EAGAIN or Libc.ECONNRESET))
                    Log.Warn($"qmp: accept on {_path}: {Libc.ErrorText(errno)}");
                return;
            }
            var client = new Client(fd);
            _loop.Remove(_listenToken);
            _listenToken = 0;
            _client = client;
            client.Token = _loop.Add(fd.Fd, Libc.EPOLLIN, events => OnClientReady(client, events));
            Log.Debug("qmp: client connected");
            Queue(client, QmpDispatcher.Greeting());
        }
    }

    private void OnClientReady(Client client, uint events)
    {
        var messages = new List<byte[]>();
        bool closing = false, overflow = false;
        lock (_lock)
        {
            if (_disposed || _client != client) return;
            if ((events & Libc.EPOLLOUT) != 0) Flush(client);
            if (_client != client) return;
            while (!closing && !overflow)
            {
                int n = UnixSocket.Receive(client.Fd.Fd, _readBuffer);
                if (n == -Libc.EAGAIN) break;
                if (n < 0) Log.Debug($"qmp: recv: {Libc.ErrorText(-n)}");
                if (n <= 0) closing = true;
                else overflow = !client.Framer.Push(_readBuffer.AsSpan(0, n), messages);
            }
        }

        // Commands run outside the lock: the machine may call SendEvent (or Dispose) from inside them.
        foreach (byte[] message in messages)
        {
            byte[] reply = _dispatcher.Handle(message, client.Session, out Action? after);
            lock (_lock)
            {
                if (_disposed || _client != client) return;
                Queue(client, reply);
            }
            after?.Invoke();
        }

        if (!overflow && !closing) return;
        lock (_lock)
        {
            if (_disposed || _client != client) return;
            if (overflow)
            {
                Queue(client, QmpDispatcher.ErrorLine(
                    $"JSON parse error, request longer than {MaxRequestBytes} bytes; closing the connection"));
            }
            Disconnect(client);
        }
    }

    /// <summary>Appends to the client's output and writes what the socket takes. Under the lock.</summary>
    private void Queue(Client client, byte[] bytes)
    {
        if (client.Output.Count + bytes.Length > MaxPendingOutput)
        {
            Log.Warn("qmp: client does not read its replies; disconnecting it");
            Disconnect(client);
            return;
        }
        client.Output.Append(bytes);
        Flush(client);
    }

    /// <summary>Writes queued output until done or the socket is full; watches EPOLLOUT only while output waits.</summary>
    private void Flush(Client client)
    {
        while (client.Output.Count > 0)
        {
            int n = UnixSocket.Send(client.Fd.Fd, client.Output.Pending);
            if (n is 0 or -Libc.EAGAIN) break;
            if (n < 0)
            {
                Log.Debug($"qmp: send: {Libc.ErrorText(-n)}");
                Disconnect(client);
                return;
            }
            client.Output.Consume(n);
        }
        bool wants = client.Output.Count > 0;
        if (wants == client.WantsWrite) return;
        client.WantsWrite = wants;
        _loop.Modify(client.Token, wants ? Libc.EPOLLIN | Libc.EPOLLOUT : Libc.EPOLLIN);
    }

    /// <summary>Closes the client and listens again. Under the lock.</summary>
    private void Disconnect(Client client)
    {
        if (_client != client) return;
        _client = null;
        _loop.Remove(client.Token);
        client.Fd.Dispose();
        Log.Debug("qmp: client disconnected");
        if (!_disposed) _listenToken = _loop.Add(_listener.Fd, Libc.EPOLLIN, _ => OnAccept());
    }

    /// <summary>Writes what output the socket takes now, closes the client and the listener, unlinks the path.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            if (_client is { } client)
            {
                Flush(client);
                Disconnect(client);
            }
            if (_listenToken != 0) _loop.Remove(_listenToken);
            _listenToken = 0;
            _listener.Dispose();
            Libc.Unlink(_path);
        }
    }
}
