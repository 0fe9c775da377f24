using System.Runtime.CompilerServices;

namespace StratoVirt.Sys;

/// <summary>An epoll instance; the caller's 64-bit token comes back with each ready fd.</summary>
public sealed unsafe class Epoll : IDisposable
{
    private readonly FileDescriptor _fd;

    public Epoll() => _fd = new FileDescriptor(SysException.Check(Libc.EpollCreate1(Libc.EPOLL_CLOEXEC), "epoll_create1"));

    public void Add(int fd, uint events, ulong token) => Control(Libc.EPOLL_CTL_ADD, fd, events, token, "EPOLL_CTL_ADD");
    public void Modify(int fd, uint events, ulong token) => Control(Libc.EPOLL_CTL_MOD, fd, events, token, "EPOLL_CTL_MOD");
    public void Remove(int fd) => Control(Libc.EPOLL_CTL_DEL, fd, 0, 0, "EPOLL_CTL_DEL");

    private const int MaxEvents = 64;

    private void Control(int op, int fd, uint events, ulong token, string what)
    {
        byte* ev = stackalloc byte[16];
        // ev holds one native epoll_event (at most 16 bytes) that epoll_ctl only reads.
        Unsafe.WriteUnaligned(ev, events);
        Unsafe.WriteUnaligned(ev + Libc.EpollEventDataOffset, token);
        SysException.Check(Libc.EpollCtl(_fd.Fd, op, fd, ev), $"{what} fd {fd}");
    }

    /// <summary>Waits for events (at most 64 at a time); returns how many were stored (0 on timeout or EINTR).</summary>
    public int Wait(Span<EpollEvent> events, int timeoutMs)
    {
        int max = Math.Min(events.Length, MaxEvents), size = Libc.EpollEventSize;
        byte* raw = stackalloc byte[MaxEvents * 16];
        // raw holds MaxEvents native entries of at most 16 bytes; epoll_wait stores at most max of them.
        int n = Libc.EpollWait(_fd.Fd, raw, max, timeoutMs);
        if (n < 0)
        {
            var ex = SysException.Last("epoll_wait");
            if (ex.Errno == Libc.EINTR) return 0;
            throw ex;
        }
        for (int i = 0; i < n; i++)
        {
            // Entry i lies within the n <= max entries epoll_wait stored.
            byte* entry = raw + i * size;
            events[i] = new EpollEvent { Events = Unsafe.ReadUnaligned<uint>(entry), Data = Unsafe.ReadUnaligned<ulong>(entry + Libc.EpollEventDataOffset) };
        }
        return n;
    }

    public void Dispose() => _fd.Dispose();
}
