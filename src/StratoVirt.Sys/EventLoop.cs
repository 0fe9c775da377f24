namespace StratoVirt.Sys;

/// <summary>
/// An epoll loop that calls a handler per ready fd. The main thread runs one; each -object iothread runs one on
/// its own thread. Handlers may be added and removed from any thread; a removed handler is never called again.
/// </summary>
public sealed class EventLoop : IDisposable
{
    private readonly Epoll _epoll = new();
    private readonly EventFd _wake = new();
    private readonly Dictionary<ulong, Registration> _handlers = [];
    private readonly EpollEvent[] _events = new EpollEvent[32];
    private ulong _nextToken = 1; // 0 is the wake-up eventfd
    private Thread? _thread;
    private volatile bool _stopping;
    private bool _disposed;

    private sealed record Registration(int Fd, Action<uint> Handler);

    public EventLoop(string name)
    {
        Name = name;
        _epoll.Add(_wake.Fd, Libc.EPOLLIN, 0);
    }

    public string Name { get; }

    /// <summary>Calls <paramref name="handler"/> with the ready events whenever <paramref name="fd"/> is ready;
    /// returns a token for <see cref="Remove"/>.</summary>
    public ulong Add(int fd, uint events, Action<uint> handler)
    {
        lock (_handlers)
        {
            ulong token = _nextToken++;
            _epoll.Add(fd, events, token);
            _handlers[token] = new Registration(fd, handler);
            return token;
        }
    }

    public void Modify(ulong token, uint events)
    {
        lock (_handlers)
        {
            if (_handlers.TryGetValue(token, out var r)) _epoll.Modify(r.Fd, events, token);
        }
    }

    /// <summary>Stops calling a handler. Safe after <see cref="Dispose"/> and after the fd was closed (the kernel
    /// has then dropped it from the epoll set already).</summary>
    public void Remove(ulong token)
    {
        lock (_handlers)
        {
            if (!_handlers.Remove(token, out var r) || _disposed) return;
            try { _epoll.Remove(r.Fd); }
            catch (SysException e) when (e.Errno is Libc.EBADF or Libc.ENOENT) { }
        }
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> (-1: forever) and runs the handlers of what became ready;
    /// returns how many ran.</summary>
    public int RunOnce(int timeoutMs)
    {
        int n = _epoll.Wait(_events, timeoutMs), ran = 0;
        for (int i = 0; i < n; i++)
        {
            ulong token = _events[i].Data;
            if (token == 0)
            {
                _wake.Drain();
                continue;
            }
            Registration? r;
            lock (_handlers) _handlers.TryGetValue(token, out r);
            if (r is null) continue;
            ran++;
            try
            {
                r.Handler(_events[i].Events);
            }
            catch (Exception e)
            {
                // The last line of defence: the owner (a device, the QMP server, a chardev) contains its own
                // failures. One that escapes stops only this fd's handler, which could otherwise fail again on
                // every wait for a level-triggered fd; the loop and the VM run on.
                Log.Warn($"{Name}: the handler of fd {r.Fd} failed and was removed: {e.GetType().Name}: {e.Message}");
                Remove(token);
            }
        }
        return ran;
    }

    /// <summary>Makes a RunOnce that is waiting return.</summary>
    public void Wake() => _wake.Signal();

    /// <summary>Runs the loop on a thread of its own until <see cref="Dispose"/>; <paramref name="prepare"/> runs
    /// first on that thread, and if it throws the loop never runs.</summary>
    public void StartThread(Action prepare)
    {
        _thread = new Thread(() =>
        {
            try { prepare(); }
            catch (Exception e)
            {
                Log.Error($"{Name}: {e.Message}");
                return;
            }
            while (!_stopping)
            {
                try { RunOnce(-1); }
                catch (Exception e) when (!_stopping) { Log.Error($"{Name}: {e.Message}"); }
            }
        }, 256 * 1024) { Name = Name, IsBackground = true };
        _thread.Start();
    }

    public void Dispose()
    {
        lock (_handlers) _disposed = true;
        _stopping = true;
        if (_thread is not null)
        {
            Wake();
            _thread.Join(TimeSpan.FromSeconds(2));
        }
        _epoll.Dispose();
        _wake.Dispose();
    }
}
