namespace StratoVirt.Sys;

/// <summary>A Linux eventfd: a counter one thread bumps to wake another's epoll loop.</summary>
public sealed unsafe class EventFd : IDisposable
{
    private readonly FileDescriptor _fd;

    public EventFd(bool nonBlocking = true)
    {
        int fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | (nonBlocking ? Libc.EFD_NONBLOCK : 0));
        _fd = new FileDescriptor(SysException.Check(fd, "eventfd"));
    }

    public int Fd => _fd.Fd;

    public void Signal(ulong value = 1)
    {
        // Writing 8 bytes from a stack local the call cannot outlive.
        Libc.Write(_fd.Fd, (byte*)&value, 8);
    }

    /// <summary>Reads and resets the counter; 0 if it was not signalled.</summary>
    public ulong Drain()
    {
        ulong value = 0;
        // Reading 8 bytes into a stack local the call cannot outlive.
        return Libc.Read(_fd.Fd, (byte*)&value, 8) == 8 ? value : 0;
    }

    public void Dispose() => _fd.Dispose();
}
