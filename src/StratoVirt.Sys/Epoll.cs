namespace StratoVirt.Sys;

/// <summary>An epoll instance; the caller's 64-bit token comes back with each ready fd.</summary>
public sealed unsafe class Epoll : IDisposable
{
    private readonly FileDescriptor _fd;

    public Epoll() => _fd = new FileDescriptor(SysException.Check(Libc.EpollCreate1(Libc.EPOLL_CLOEXEC), "epoll_create1"));

    public void Add(int fd, uint events, ulong token) => Control(Libc.EPOLL_CTL_ADD, fd, events, token, "EPOLL_CTL_ADD");
    public void Modify(int fd, uint events, ulong token) => Control(Libc.EPOLL_CTL_MOD, fd, events, token, "EPOLL_CTL_MOD");
    public void Remove(int fd) => Control(Libc.EPOLL_CTL_DEL, fd, 0, 0, "EPOLL_CTL_DEL");

    private void Control(int op, int fd, uint events, ulong token, string what)
    {
        var ev = new EpollEvent { Events = events, Data = token };
        // ev is a local of this frame that epoll_ctl only reads.
        SysException.Check(Libc.EpollCtl(_fd.Fd, op, fd, &ev), $"{what} fd {fd}");
    }

    /// <summary>Waits for events; returns how many were stored (0 on timeout or EINTR).</summary>
    public int Wait(Span<EpollEvent> events, int timeoutMs)
    {
        // The span is pinned for the call and epoll_wait stores at most events.Length entries.
        fixed (EpollEvent* p = events)
        {
            int n = Libc.EpollWait(_fd.Fd, p, events.Length, timeoutMs);
            if (n >= 0) return n;
            var ex = SysException.Last("epoll_wait");
            if (ex.Errno == Libc.EINTR) return 0;
            throw ex;
        }
    }

    public void Dispose() => _fd.Dispose();
}
