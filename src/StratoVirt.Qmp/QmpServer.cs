using StratoVirt.Machine;
using StratoVirt.Sys;

namespace StratoVirt.Qmp;

/// <summary>
/// A QMP server on one or more listeners (unix sockets and TCP addresses), served from an <see cref="EventLoop"/>
/// the machine runs.
/// <para>One client at a time: while a client is connected every listening socket is taken off the loop, so
/// further connections wait in the kernel's backlog and get their greeting once the current client leaves.</para>
/// <para>Each client gets the greeting; commands are served at once (see <see cref="QmpDispatcher"/> on
/// negotiation) and events follow the client's first command. Requests may be split across reads or come
/// several per read; malformed JSON gets a GenericError and the connection stays open; a request longer than
/// <see cref="MaxRequestBytes"/> gets an error and the connection is closed. Each connection is rate-limited as
/// upstream does (<see cref="DefaultRateLimit"/> requests a second; the excess gets OperationThrottled).</para>
/// <para>On a unix socket a request may carry one fd by SCM_RIGHTS: <c>getfd</c> keeps it in <see cref="Fds"/>,
/// any other command's fd is closed once it is answered.</para>
/// <para><see cref="SendEvent"/> may be called from any thread.</para>
/// </summary>
public sealed class QmpServer : IDisposable
{
    public const int MaxRequestBytes = 64 * 1024;

    /// <summary>Upstream's LEAK_BUCKET_LIMIT: requests per second per connection.</summary>
    public const int DefaultRateLimit = 100;

    /// <summary>Queued output beyond this means the client stopped reading; it is disconnected.</summary>
    private const int MaxPendingOutput = 4 << 20;

    /// <summary>What the greeting and query-version report: QEMU 5.0.1, as upstream does.</summary>
    public static readonly QmpVersion Version = new(new QemuVersion(1, 0, 5), "StratoVirt-" + Product.Version);

    private readonly EventLoop _loop;
    private readonly QmpDispatcher _dispatcher;
    private readonly Listener[] _listeners;
    private readonly int _rateLimit;
    private readonly TimeProvider _clock;
    private readonly Lock _lock = new();
    private readonly byte[] _readBuffer = new byte[4096];
    private readonly List<(byte[] Request, FileDescriptor? Fd)> _requests = [];
    private readonly List<byte[]> _framed = [];
    private Client? _client;
    private bool _disposed;

    private sealed class Listener(MonitorEndpoint endpoint, FileDescriptor fd)
    {
        public MonitorEndpoint Endpoint { get; } = endpoint;
        public FileDescriptor Fd { get; } = fd;
        public ulong Token;
    }

    private sealed class Client(FileDescriptor fd, QmpSession session)
    {
        public FileDescriptor Fd { get; } = fd;
        public ulong Token;
        public bool WantsWrite;
        public readonly QmpSession Session = session;
        public readonly QmpFramer Framer = new(MaxRequestBytes);
        public readonly ByteQueue Output = new();

        /// <summary>An fd that came with the bytes of a request not yet complete.</summary>
        public FileDescriptor? PendingFd;
    }

    /// <summary>Binds every endpoint (a unix socket mode 0600, a stale socket there replaced; a TCP address with
    /// SO_REUSEADDR) and starts accepting on <paramref name="loop"/>.</summary>
    /// <param name="rateLimit">Requests per second per connection; 0 turns the limit off.</param>
    /// <param name="clock">The rate limit's clock (tests step it by hand).</param>
    /// <exception cref="SysException">A path is too long, is another kind of file or has a live listener; a TCP
    /// port is in use or the address is not this host's. Nothing stays bound.</exception>
    /// <param name="hotplug">The machine's hotplug; null: no hotplug commands.</param>
    public QmpServer(IReadOnlyList<MonitorEndpoint> endpoints, EventLoop loop, IMachineControl commands,
        IHotplug? hotplug = null, int rateLimit = DefaultRateLimit, TimeProvider? clock = null)
    {
        if (endpoints.Count == 0) throw new ArgumentException("a QMP server needs at least one endpoint", nameof(endpoints));
        _loop = loop;
        _rateLimit = rateLimit;
        _clock = clock ?? TimeProvider.System;
        _dispatcher = new QmpDispatcher(commands, hotplug, Fds);
        var listeners = new List<Listener>();
        try
        {
            foreach (var endpoint in endpoints) listeners.Add(Bind(endpoint));
            _listeners = [.. listeners];
            lock (_lock) Listen();
        }
        catch
        {
            foreach (var l in listeners)
            {
                if (l.Token != 0) loop.Remove(l.Token);
                Close(l);
            }
            throw;
        }
    }

    private static Listener Bind(MonitorEndpoint endpoint)
    {
        switch (endpoint)
        {
            case MonitorEndpoint.Unix unix:
                return new Listener(endpoint, UnixSocket.Listen(unix.Path, mode: 0x180 /* 0600 */));
            case MonitorEndpoint.Tcp tcp:
            {
                var fd = TcpSocket.Listen(tcp.Address, tcp.Port);
                return new Listener(tcp with { Port = TcpSocket.LocalPort(fd) }, fd);
            }
            default:
                throw new ArgumentException($"unknown monitor endpoint {endpoint}", nameof(endpoint));
        }
    }

    /// <summary>The endpoints as bound: a TCP port 0 is replaced by the port the kernel chose.</summary>
    public IReadOnlyList<MonitorEndpoint> Endpoints => Array.ConvertAll(_listeners, l => l.Endpoint);

    /// <summary>The fds clients passed with getfd, by name (for <c>netdev_add fds=&lt;name&gt;</c>).</summary>
    public QmpFdStore Fds { get; } = new();

    /// <summary>True while a client is connected.</summary>
    public bool HasClient
    {
        get { lock (_lock) return _client is not null; }
    }

    /// <summary>Sends <c>{"event":name,"data":data,"timestamp":...}</c> to the client, once it has sent its
    /// first command; otherwise the event is dropped. Any thread.</summary>
    public void SendEvent(string name, IQmpValue? data = null)
    {
        lock (_lock)
        {
            if (_disposed || _client is not { Session.Negotiated: true } client) return;
            // Only queued: the loop's thread sends it when the socket is writable, so that a vCPU or iothread
            // raising an event needs no socket calls in its seccomp list.
            Queue(client, QmpDispatcher.Event(name, data, DateTimeOffset.UtcNow), sendNow: false);
        }
    }

    /// <summary>Turns what happened to the machine into its QMP event (subscribe it to
    /// <c>VirtualMachine.Events</c>). Any thread.</summary>
    public void Send(MachineEvent e)
    {
        switch (e)
        {
            case MachineEvent.Shutdown s:
                SendEvent("SHUTDOWN", new ShutdownEventData(s.Guest, ShutdownCause(s.Cause)));
                break;
            case MachineEvent.Reset r:
                SendEvent("RESET", new ShutdownEventData(r.Guest, ShutdownCause(r.Cause)));
                break;
            case MachineEvent.Powerdown:
                SendEvent("POWERDOWN");
                break;
            case MachineEvent.Stopped:
                SendEvent("STOP");
                break;
            case MachineEvent.Resumed:
                SendEvent("RESUME");
                break;
            case MachineEvent.DeviceDeleted d:
                // upstream's microVM path is the id; its standard VM's (and QEMU's) /machine/peripheral/<id>
                SendEvent("DEVICE_DELETED", new DeviceDeletedEventData(d.Id, d.Path ?? d.Id));
                break;
            case MachineEvent.BalloonChanged b:
                SendEvent("BALLOON_CHANGED", new BalloonInfo(b.ActualBytes));
                break;
            case MachineEvent.BlockIoError b:
                SendEvent("BLOCK_IO_ERROR", new BlockIoErrorEventData(b.Device, b.Write ? "write" : "read", "report",
                    b.NoSpace, b.Reason));
                break;
            case MachineEvent.BackendDisconnected d:
                SendEvent("DEVICE_BACKEND_DISCONNECTED", new BackendDisconnectedEventData(d.Device, d.Chardev, d.Socket));
                break;
        }
    }

    /// <summary>QEMU's ShutdownCause name for how the VM ended, which clients parse. system_powerdown has no cause
    /// of its own there: it ends the VM from the host, as quit does.</summary>
    public static string ShutdownCause(ExitCause cause) => cause switch
    {
        ExitCause.GuestPowerOff => "guest-shutdown",
        ExitCause.GuestReset => "guest-reset",
        ExitCause.GuestPanic => "guest-panic",
        ExitCause.QmpQuit or ExitCause.QmpSystemPowerdown => "host-qmp-quit",
        ExitCause.QmpSystemReset => "host-qmp-system-reset",
        ExitCause.Signal => "host-signal",
        _ => "host-error",
    };

    /// <summary>Waits up to <paramref name="bound"/> until the client has taken every queued reply and event (called
    /// as the VM ends, so the last ones are not lost when the process exits). Any thread.</summary>
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

    /// <summary>Puts every listener on the loop. Under the lock.</summary>
    private void Listen()
    {
        foreach (var l in _listeners) l.Token = _loop.Add(l.Fd.Fd, Libc.EPOLLIN, _ => OnAccept(l));
    }

    /// <summary>Takes every listener off the loop. Under the lock.</summary>
    private void StopListening()
    {
        foreach (var l in _listeners)
        {
            if (l.Token != 0) _loop.Remove(l.Token);
            l.Token = 0;
        }
    }

    private void OnAccept(Listener listener)
    {
        try
        {
            Accept(listener);
        }
        catch (Exception e)
        {
            Log.Warn($"qmp: accepting a client on {listener.Endpoint} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private void Accept(Listener listener)
    {
        lock (_lock)
        {
            if (_disposed || _client is not null) return;
            var fd = UnixSocket.Accept(listener.Fd, out int errno);
            if (fd is null)
            {
                if (errno is not (Libc.EAGAIN or Libc.ECONNRESET))
                    Log.Warn($"qmp: accept on {listener.Endpoint}: {Libc.ErrorText(errno)}");
                return;
            }
            var session = new QmpSession(new LeakBucket(_rateLimit, _clock), listener.Endpoint is MonitorEndpoint.Unix);
            var client = new Client(fd, session);
            StopListening();
            _client = client;
            client.Token = _loop.Add(fd.Fd, Libc.EPOLLIN, events => OnClientReady(client, events));
            Log.Debug($"qmp: client connected on {listener.Endpoint}");
            Queue(client, QmpDispatcher.Greeting());
        }
    }

    /// <summary>Serves one client's readiness; a failure there ends that connection only (the next client is
    /// greeted as usual) and the VM runs on.</summary>
    private void OnClientReady(Client client, uint events)
    {
        try
        {
            ServeClient(client, events);
        }
        catch (Exception e)
        {
            Log.Warn($"qmp: closing the connection after a failure: {e.GetType().Name}: {e.Message}");
            CloseFds(0);
            lock (_lock)
            {
                if (!_disposed && _client == client) Disconnect(client);
            }
        }
    }

    private void ServeClient(Client client, uint events)
    {
        // The loop calls this on its one thread, so the request lists are not shared.
        _requests.Clear();
        bool closing = false, overflow = false;
        lock (_lock)
        {
            if (_disposed || _client != client) return;
            if ((events & Libc.EPOLLOUT) != 0) Flush(client);
            if (_client != client) return;
            while (!closing && !overflow)
            {
                FileDescriptor? fd = null;
                int n = client.Session.CanPassFds
                    ? UnixSocket.ReceiveWithFd(client.Fd.Fd, _readBuffer, out fd)
                    : UnixSocket.Receive(client.Fd.Fd, _readBuffer);
                if (n == -Libc.EAGAIN) break;
                if (n < 0) Log.Debug($"qmp: recv: {Libc.ErrorText(-n)}");
                if (n <= 0)
                {
                    fd?.Dispose();
                    closing = true;
                    break;
                }
                _framed.Clear();
                overflow = !client.Framer.Push(_readBuffer.AsSpan(0, n), _framed);
                AttachFds(client, fd, overflow);
            }
        }

        // Commands run outside the lock: the machine may call SendEvent (or Dispose) from inside them.
        for (int i = 0; i < _requests.Count; i++)
        {
            var (request, fd) = _requests[i];
            client.Session.ReceivedFd = fd;
            byte[] reply = _dispatcher.Handle(request, client.Session, out Action? after);
            // An fd the command did not take (anything but getfd) is closed now.
            client.Session.ReceivedFd?.Dispose();
            client.Session.ReceivedFd = null;
            lock (_lock)
            {
                if (_disposed || _client != client)
                {
                    CloseFds(i + 1);
                    return;
                }
                Queue(client, reply);
            }
            if (after is null) continue;
            try { after(); }
            catch (Exception e) { Log.Warn($"qmp: completing a command failed: {e.GetType().Name}: {e.Message}"); }
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

    /// <summary>
    /// Moves this read's framed requests to the run list with the fd, if any, that came with them. The kernel
    /// ends a read at the data an fd was sent with, so the fd belongs to the request whose bytes end the read:
    /// the one still being framed, else the last one this read completed. A request completed by a later read
    /// gets the fd held for it.
    /// </summary>
    private void AttachFds(Client client, FileDescriptor? fd, bool overflow)
    {
        for (int i = 0; i < _framed.Count; i++)
        {
            FileDescriptor? attached = null;
            if (i == 0 && client.PendingFd is not null)
            {
                attached = client.PendingFd;
                client.PendingFd = null;
            }
            if (fd is not null && i == _framed.Count - 1 && !client.Framer.InProgress)
            {
                attached?.Dispose();
                attached = fd;
                fd = null;
            }
            _requests.Add((_framed[i], attached));
        }
        if (fd is null) return;
        if (client.Framer.InProgress && !overflow)
        {
            client.PendingFd?.Dispose();
            client.PendingFd = fd;
        }
        else
        {
            fd.Dispose(); // came with nothing but whitespace, or with an overlong request
        }
    }

    /// <summary>Closes the fds of requests from <paramref name="from"/> on, which will not run.</summary>
    private void CloseFds(int from)
    {
        for (int i = from; i < _requests.Count; i++) _requests[i].Fd?.Dispose();
        _requests.Clear();
    }

    /// <summary>Appends to the client's output and, with <paramref name="sendNow"/>, writes what the socket takes;
    /// what is left waits for EPOLLOUT. Under the lock.</summary>
    private void Queue(Client client, byte[] bytes, bool sendNow = true)
    {
        if (client.Output.Count + bytes.Length > MaxPendingOutput)
        {
            Log.Warn("qmp: client does not read its replies; disconnecting it");
            Disconnect(client);
            return;
        }
        client.Output.Append(bytes);
        if (sendNow) Flush(client);
        else WatchWritable(client);
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
        WatchWritable(client);
    }

    /// <summary>Watches EPOLLOUT exactly while output waits. Under the lock.</summary>
    private void WatchWritable(Client client)
    {
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
        client.PendingFd?.Dispose();
        client.PendingFd = null;
        Log.Debug("qmp: client disconnected");
        if (!_disposed) Listen();
    }

    private static void Close(Listener listener)
    {
        listener.Fd.Dispose();
        if (listener.Endpoint is MonitorEndpoint.Unix unix) Libc.Unlink(unix.Path);
    }

    /// <summary>Writes what output the socket takes now, closes the client, the listeners and every stored fd,
    /// and unlinks the unix socket paths.</summary>
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
            StopListening();
            foreach (var l in _listeners) Close(l);
            Fds.Dispose();
        }
    }
}
