using StratoVirt.Sys;

namespace StratoVirt.Qmp;

/// <summary>
/// The file descriptors QMP clients passed with <c>getfd</c>, by name. The store owns them: a re-used name
/// closes the fd it held, <c>closefd</c> closes one, <see cref="Dispose"/> closes all. A consumer (such as
/// <c>netdev_add fds=&lt;name&gt;</c>) takes ownership with <see cref="TryTake"/>. Thread-safe.
/// </summary>
public sealed class QmpFdStore : IDisposable
{
    private readonly Dictionary<string, FileDescriptor> _fds = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private bool _disposed;

    public int Count
    {
        get { lock (_lock) return _fds.Count; }
    }

    /// <summary>Stores <paramref name="fd"/> under <paramref name="name"/>, closing what the name held.</summary>
    public void Add(string name, FileDescriptor fd)
    {
        FileDescriptor? old;
        lock (_lock)
        {
            if (_disposed)
            {
                fd.Dispose();
                return;
            }
            _fds.Remove(name, out old);
            _fds[name] = fd;
        }
        old?.Dispose();
    }

    /// <summary>Removes the fd named <paramref name="name"/> and hands it, and the duty to close it, to the
    /// caller; false when there is none.</summary>
    public bool TryTake(string name, out FileDescriptor fd)
    {
        lock (_lock)
        {
            if (_fds.Remove(name, out var found))
            {
                fd = found;
                return true;
            }
        }
        fd = null!;
        return false;
    }

    /// <summary>Closes the fd named <paramref name="name"/>; false when there is none.</summary>
    public bool Close(string name)
    {
        if (!TryTake(name, out var fd)) return false;
        fd.Dispose();
        return true;
    }

    public void Dispose()
    {
        FileDescriptor[] all;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            all = new FileDescriptor[_fds.Count];
            _fds.Values.CopyTo(all, 0);
            _fds.Clear();
        }
        foreach (var fd in all) fd.Dispose();
    }
}
