using StratoVirt.Devices.Legacy;
using StratoVirt.Sys;

namespace StratoVirt.Devices.Chardev;

/// <summary>A chardev could not be set up from its host configuration; the message names the chardev.</summary>
public sealed class ChardevException(string message) : VmmException(message);

/// <summary>
/// A character backend (-chardev): a byte stream between one guest-facing frontend (virtconsole, a UART) and
/// the host.
/// </summary>
/// <remarks>
/// Output: <see cref="Write"/> never blocks the VMM for long. When the host reader does not keep up, it waits at
/// most <see cref="StallTimeoutMs"/> for room, then drops the rest and counts it in <see cref="DroppedBytes"/>;
/// while stalled it drops at once until the reader takes bytes again. Nothing is buffered in the VMM.
/// <para/>
/// Input: the frontend calls <see cref="Attach"/> once with its event loop and a callback. The chardev watches
/// its input fd (and, for a socket, the listener) on that loop and invokes the callback, on the loop thread,
/// when input is readable. The callback must then call <see cref="Read"/> until it returns 0, or call
/// <see cref="SetInputEnabled"/>(false) while it has no room: the bytes then stay in the host fd (the kernel's
/// buffer) until input is enabled again, so none are lost. The epoll watch is level-triggered.
/// <para/>
/// Locking: the chardev never holds its own lock while calling the frontend's callback, so a frontend may call
/// any member while holding its own lock (virtio devices hold their Gate).
/// </remarks>
public abstract class Chardev : ISerialOutput, IDisposable
{
    /// <summary>How long a write waits for a stuck reader before output is dropped.</summary>
    public const int StallTimeoutMs = 100;

    private EventLoop? _loop;
    private object? _owner;
    private Action? _onInput;
    private bool _inputEnabled = true;
    private ulong _inputToken;
    private int _watchedFd = -1;
    private bool _stalled;
    private bool _disposed;
    private long _dropped;

    protected Chardev(string id) => Id = id;

    /// <summary>The -chardev id.</summary>
    public string Id { get; }

    /// <summary>Guards the backend's fds and loop registrations.</summary>
    protected Lock Sync { get; } = new();

    protected EventLoop? Loop => _loop;

    /// <summary>Output bytes dropped because the reader was stuck or absent.</summary>
    public long DroppedBytes => Interlocked.Read(ref _dropped);

    /// <summary>The fd input currently comes from, or -1 when there is none (output-only backend, no client
    /// connected, end of input). It may change over time (a socket's client); <see cref="Attach"/> follows it.</summary>
    public abstract int InputFd { get; }

    /// <summary>Sends guest output to the host; see the class remarks for what happens to a slow reader.</summary>
    public abstract void Write(ReadOnlySpan<byte> data);

    /// <summary>Reads available input without blocking; returns the byte count, 0 when nothing is available now
    /// (end of input and disconnects are handled inside and also read as 0).</summary>
    public abstract int Read(Span<byte> buffer);

    /// <summary>Reserves the chardev for one frontend (<paramref name="owner"/>), at machine build time.</summary>
    /// <exception cref="ChardevException">Another frontend has it already.</exception>
    public void Claim(object owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        lock (Sync)
        {
            if (_owner is not null && !ReferenceEquals(_owner, owner))
                throw new ChardevException($"chardev '{Id}' is already used by another device");
            _owner = owner;
        }
    }

    /// <summary>Starts watching input on <paramref name="loop"/>; <paramref name="onInput"/> runs on the loop thread
    /// when input is readable. Once per chardev (a chardev serves one frontend).</summary>
    public void Attach(EventLoop loop, Action onInput)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(onInput);
        lock (Sync)
        {
            if (_loop is not null) throw new InvalidOperationException($"chardev '{Id}' is already attached");
            _loop = loop;
            _onInput = onInput;
            OnAttach(loop);
            UpdateInputWatch();
        }
    }

    /// <summary>Stops (false) or resumes (true) watching input, e.g. while the frontend has nowhere to put it.</summary>
    public void SetInputEnabled(bool enabled)
    {
        lock (Sync)
        {
            _inputEnabled = enabled;
            UpdateInputWatch();
        }
    }

    /// <summary>Whether input is being watched now (attached, enabled, and an input fd exists).</summary>
    public bool InputWatched
    {
        get { lock (Sync) return _watchedFd >= 0; }
    }

    /// <summary>Backend hook, under <see cref="Sync"/>, when a frontend attaches (e.g. watch a listener).</summary>
    protected virtual void OnAttach(EventLoop loop) { }

    /// <summary>Re-registers the input watch after <see cref="InputFd"/> or the enabled state changed; call under
    /// <see cref="Sync"/>. The fd is removed, not just masked, when input is off: epoll reports hang-ups even for an
    /// empty event mask, and a hung-up fd would otherwise wake the loop forever.</summary>
    protected void UpdateInputWatch()
    {
        int want = _loop is not null && _inputEnabled ? InputFd : -1;
        if (want == _watchedFd) return;
        if (_watchedFd >= 0) _loop!.Remove(_inputToken);
        _watchedFd = -1;
        if (want < 0) return;
        try
        {
            _inputToken = _loop!.Add(want, Libc.EPOLLIN, OnInputReady);
            _watchedFd = want;
        }
        catch (SysException e) when (e.Errno == Libc.EPERM)
        {
            OnInputUnwatchable(); // a regular file or /dev/null: epoll cannot watch it, so there is no input
        }
    }

    /// <summary>The input fd cannot be watched (EPERM from epoll); the backend stops offering it.</summary>
    protected virtual void OnInputUnwatchable() { }

    private void OnInputReady(uint events) => _onInput?.Invoke();

    /// <summary>Writes all of <paramref name="data"/> to <paramref name="fd"/> under the stall policy. A blocking fd
    /// (stdout, which the VMM does not own) is polled before each small chunk so the write cannot block long.
    /// Returns false on a hard error (reader gone: EPIPE, ECONNRESET, EIO); the caller decides what that means.</summary>
    protected bool WriteFd(int fd, ReadOnlySpan<byte> data, bool socket = false, bool blockingFd = false)
    {
        const int BlockingChunk = 512; // a pipe or tty that polls writable takes this much without blocking
        int done = 0;
        while (done < data.Length)
        {
            int len = data.Length - done;
            if (blockingFd)
            {
                if (!WaitWritable(fd)) return Drop(data.Length - done);
                len = Math.Min(len, BlockingChunk);
            }
            // Sockets go through UnixSocket.Send (no SIGPIPE, never blocks); both return -errno.
            var chunk = data.Slice(done, len);
            int n = socket ? UnixSocket.Send(fd, chunk) : StreamIo.Write(fd, chunk);
            if (n > 0)
            {
                done += n;
                _stalled = false;
                continue;
            }
            int errno = n == 0 ? Libc.EAGAIN : -n;
            if (errno == Libc.EAGAIN && !blockingFd)
            {
                if (WaitWritable(fd)) continue;
                return Drop(data.Length - done);
            }
            Drop(data.Length - done);
            return false;
        }
        return true;
    }

    private bool Drop(int count)
    {
        CountDropped(count);
        _stalled = true;
        return true;
    }

    /// <summary>Counts output the backend discarded (e.g. a socket with no client).</summary>
    protected void CountDropped(int count) => Interlocked.Add(ref _dropped, count);

    /// <summary>Waits for room: up to the stall timeout normally, not at all while already stalled.</summary>
    private bool WaitWritable(int fd)
    {
        while (true)
        {
            int ready = StreamIo.Poll(fd, Libc.POLLOUT, _stalled ? 0 : StallTimeoutMs);
            if (ready > 0) return (ready & Libc.POLLOUT) != 0;
            if (ready != -Libc.EINTR) return false;
        }
    }

    /// <summary>Reads without blocking: a blocking fd is polled first. Returns the byte count, 0 at end of input,
    /// or -1 when nothing is available (or on an error, which the caller treats like a disconnect if it cares,
    /// via <paramref name="errno"/>).</summary>
    protected static int ReadFd(int fd, Span<byte> buffer, bool blockingFd, out int errno)
    {
        errno = 0;
        if (buffer.IsEmpty) return -1;
        if (blockingFd && StreamIo.Poll(fd, Libc.POLLIN, 0) <= 0) return -1;
        int n = StreamIo.Read(fd, buffer);
        if (n >= 0) return n;
        if (n != -Libc.EAGAIN) errno = -n;
        return -1;
    }

    /// <summary>Releases the backend's fds; the loop registrations go first.</summary>
    public void Dispose()
    {
        lock (Sync)
        {
            if (_disposed) return;
            _disposed = true;
            _inputEnabled = false;
            try { UpdateInputWatch(); }
            catch (SysException) { } // the loop was disposed first: its registrations are gone with it
            Close();
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>Closes the backend's resources; runs once, under <see cref="Sync"/>.</summary>
    protected abstract void Close();
}
