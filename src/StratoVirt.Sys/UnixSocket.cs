using System.Runtime.InteropServices;
using System.Text;

namespace StratoVirt.Sys;

/// <summary>
/// Non-blocking AF_UNIX stream sockets: a listener bound to a path, accept, connect, send, receive and shutdown.
/// Setting up a listener throws <see cref="SysException"/> naming the path; the calls made per connection return
/// a negative errno instead (EAGAIN: not now), so a device's hot path neither throws nor allocates.
/// </summary>
public static unsafe class UnixSocket
{
    /// <summary>The longest path sun_path holds, leaving room for its terminating NUL.</summary>
    public const int MaxPathBytes = SockAddrUn.PathCapacity - 1;

    private const int StreamFlags = Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC;

    /// <summary>
    /// Binds a listening socket at <paramref name="path"/>. A stale socket file (nobody listening) is replaced; a
    /// live socket or any other kind of file is an error. A <paramref name="mode"/> is set before listen(2), so no
    /// client can connect while the file still has the umask's mode.
    /// </summary>
    /// <exception cref="SysException">The path is empty or too long (ENAMETOOLONG), in use (EADDRINUSE), not a
    /// socket (EEXIST), or a call failed.</exception>
    public static FileDescriptor Listen(string path, uint? mode = null, int backlog = 8)
    {
        var addr = Address(path);
        RemoveStale(path, addr);
        var sock = new FileDescriptor(SysException.Check(Libc.Socket(Libc.AF_UNIX, StreamFlags, 0), $"socket for {path}"));
        bool bound = false;
        try
        {
            // addr is a local of this frame that bind only reads.
            SysException.Check(Libc.Bind(sock.Fd, &addr, (uint)sizeof(SockAddrUn)), $"bind {path}");
            bound = true;
            if (mode is uint m) SysException.Check(Libc.Chmod(path, m), $"chmod {path}");
            SysException.Check(Libc.Listen(sock.Fd, backlog), $"listen {path}");
            return sock;
        }
        catch
        {
            sock.Dispose();
            if (bound) Libc.Unlink(path);
            throw;
        }
    }

    /// <summary>Accepts one pending connection (on any stream listener, unix or TCP) as a non-blocking fd; null with <paramref name="errno"/> set when
    /// there is none (EAGAIN: none pending; ECONNRESET: the client left before it was accepted).</summary>
    public static FileDescriptor? Accept(FileDescriptor listener, out int errno)
    {
        while (true)
        {
            int fd = Libc.Accept4(listener.Fd, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
            errno = fd >= 0 ? 0 : Marshal.GetLastPInvokeError();
            if (errno == Libc.EINTR) continue;
            return fd >= 0 ? new FileDescriptor(fd) : null;
        }
    }

    /// <summary>Connects a new non-blocking socket to <paramref name="path"/> (UTF-8, no NUL); null with
    /// <paramref name="errno"/> set on failure (ECONNREFUSED: nobody listens; EAGAIN: the backlog is full). A unix
    /// stream connect completes at once or fails.</summary>
    public static FileDescriptor? Connect(ReadOnlySpan<byte> path, out int errno)
    {
        if (path.IsEmpty || path.Length > MaxPathBytes)
        {
            errno = Libc.ENAMETOOLONG;
            return null;
        }
        var addr = new SockAddrUn { Family = Libc.AF_UNIX };
        // Path is a 108-byte inline buffer of this local; path.Length <= 107 keeps the zeroed NUL after it.
        path.CopyTo(new Span<byte>(addr.Path, SockAddrUn.PathCapacity));
        return Connect(addr, out errno);
    }

    /// <summary>Reads what is there: the byte count, 0 at end of stream, or a negative errno (-EAGAIN: nothing
    /// is ready).</summary>
    public static int Receive(int fd, Span<byte> buffer)
    {
        // The span is pinned for the duration of the call; iov and msg live on this frame and recvmsg writes at
        // most the span's length. (recvmsg rather than recv: one call fewer for the seccomp lists.)
        fixed (byte* p = buffer)
        {
            var iov = new Iovec { Base = (nint)p, Length = (nuint)buffer.Length };
            while (true)
            {
                var msg = new MsgHdr { Iov = &iov, IovLength = 1 };
                nint n = Libc.RecvMsg(fd, &msg, Libc.MSG_DONTWAIT);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR) return -errno;
            }
        }
    }

    /// <summary>Fds accepted in one message; any beyond the first are closed (QMP's getfd takes one).</summary>
    private const int MaxReceivedFds = 8;

    /// <summary>
    /// <see cref="Receive"/> that also takes file descriptors passed with SCM_RIGHTS: the first one comes back in
    /// <paramref name="passed"/> (close-on-exec, owned by the caller), any others are closed at once. The kernel
    /// ends a read at the data an fd came with, so the fd belongs to the last bytes returned.
    /// </summary>
    public static int ReceiveWithFd(int fd, Span<byte> buffer, out FileDescriptor? passed)
    {
        passed = null;
        // Room for a cmsghdr and MaxReceivedFds ints, 8-byte aligned as cmsghdr requires.
        ulong* control = stackalloc ulong[(CmsgHdr.Size + MaxReceivedFds * sizeof(int) + 7) / 8];
        int controlBytes = (CmsgHdr.Size + MaxReceivedFds * sizeof(int) + 7) / 8 * 8;
        // buffer is pinned for the call; iov, msg and control live on this frame and recvmsg writes within
        // the lengths they give.
        fixed (byte* p = buffer)
        {
            var iov = new Iovec { Base = (nint)p, Length = (nuint)buffer.Length };
            while (true)
            {
                var msg = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlBytes };
                nint n = Libc.RecvMsg(fd, &msg, Libc.MSG_DONTWAIT | Libc.MSG_CMSG_CLOEXEC);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Libc.EINTR) continue;
                    return -errno;
                }
                passed = TakeFds((byte*)control, (int)msg.ControlLength);
                return (int)n;
            }
        }
    }

    /// <summary>The first SCM_RIGHTS fd in a received control buffer; the rest are closed.</summary>
    private static FileDescriptor? TakeFds(byte* control, int length)
    {
        FileDescriptor? first = null;
        int offset = 0;
        while (offset + CmsgHdr.Size <= length)
        {
            // offset + header size is within the control bytes the kernel filled.
            var header = (CmsgHdr*)(control + offset);
            int cmsgLength = (int)header->Length;
            if (cmsgLength < CmsgHdr.Size || offset + cmsgLength > length) break;
            if (header->Level == Libc.SOL_SOCKET && header->Type == Libc.SCM_RIGHTS)
            {
                int count = (cmsgLength - CmsgHdr.Size) / sizeof(int);
                for (int i = 0; i < count; i++)
                {
                    int received = ((int*)(control + offset + CmsgHdr.Size))[i];
                    if (first is null) first = new FileDescriptor(received);
                    else Libc.Close(received);
                }
            }
            offset += (cmsgLength + 7) & ~7;
        }
        return first;
    }

    /// <summary>Sends <paramref name="data"/> with <paramref name="passFd"/> attached by SCM_RIGHTS (as a QMP
    /// client passes an fd for getfd): the byte count or a negative errno.</summary>
    public static int SendWithFd(int fd, ReadOnlySpan<byte> data, int passFd) => SendWithFds(fd, data, [passFd]);

    /// <summary>The most fds one message passes (the kernel's SCM_MAX_FD is 253; vhost-user passes at most 8).</summary>
    public const int MaxPassedFds = 8;

    /// <summary>Sends <paramref name="data"/> with <paramref name="passFds"/> (none to <see cref="MaxPassedFds"/>)
    /// attached by SCM_RIGHTS, as vhost-user passes a memory table's fds: the byte count (the fds go with the first
    /// byte) or a negative errno.</summary>
    public static int SendWithFds(int fd, ReadOnlySpan<byte> data, ReadOnlySpan<int> passFds)
    {
        if (passFds.Length > MaxPassedFds) throw new ArgumentException($"at most {MaxPassedFds} fds go in one message");
        const int controlBytes = (CmsgHdr.Size + MaxPassedFds * sizeof(int) + 7) / 8 * 8;
        ulong* control = stackalloc ulong[controlBytes / 8];
        // control is this frame's buffer: a cmsghdr and up to MaxPassedFds ints; data is pinned for the call.
        var header = (CmsgHdr*)control;
        header->Length = (nuint)(CmsgHdr.Size + passFds.Length * sizeof(int));
        header->Level = Libc.SOL_SOCKET;
        header->Type = Libc.SCM_RIGHTS;
        passFds.CopyTo(new Span<int>((byte*)control + CmsgHdr.Size, passFds.Length));
        fixed (byte* p = data)
        {
            var iov = new Iovec { Base = (nint)p, Length = (nuint)data.Length };
            var msg = new MsgHdr { Iov = &iov, IovLength = 1 };
            if (passFds.Length > 0)
            {
                msg.Control = control;
                msg.ControlLength = (nuint)((CmsgHdr.Size + passFds.Length * sizeof(int) + 7) & ~7);
            }
            while (true)
            {
                nint n = Libc.SendMsg(fd, &msg, Libc.MSG_NOSIGNAL);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR) return -errno;
            }
        }
    }

    /// <summary>Writes what the socket takes now: the byte count, or a negative errno (-EAGAIN: it is full). A
    /// closed peer is -EPIPE or -ECONNRESET, never SIGPIPE.</summary>
    public static int Send(int fd, ReadOnlySpan<byte> data)
    {
        // The span is pinned for the duration of the call; iov and msg live on this frame and sendmsg reads at
        // most the span's length.
        fixed (byte* p = data)
        {
            var iov = new Iovec { Base = (nint)p, Length = (nuint)data.Length };
            while (true)
            {
                var msg = new MsgHdr { Iov = &iov, IovLength = 1 };
                nint n = Libc.SendMsg(fd, &msg, Libc.MSG_DONTWAIT | Libc.MSG_NOSIGNAL);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR) return -errno;
            }
        }
    }

    /// <summary>Blocks until <paramref name="fd"/> can take more output, has failed, or <paramref name="timeoutMs"/>
    /// passed; false on timeout.</summary>
    public static bool WaitWritable(int fd, int timeoutMs)
    {
        var pfd = new PollFd { Fd = fd, Events = Libc.POLLOUT };
        // pfd is a local of this frame; poll writes only its revents.
        return Libc.Poll(&pfd, 1, timeoutMs) != 0;
    }

    /// <summary>Blocks until <paramref name="fd"/> has input, has failed or hung up, or <paramref name="timeoutMs"/>
    /// passed; false on timeout.</summary>
    public static bool WaitReadable(int fd, int timeoutMs)
    {
        var pfd = new PollFd { Fd = fd, Events = Libc.POLLIN };
        // pfd is a local of this frame; poll writes only its revents.
        return Libc.Poll(&pfd, 1, timeoutMs) != 0;
    }

    /// <summary>shutdown(2) (<see cref="Libc.SHUT_WR"/> and so on); errors (the peer is already gone) are ignored.</summary>
    public static void Shutdown(int fd, int how) => Libc.Shutdown(fd, how);

    private static FileDescriptor? Connect(SockAddrUn addr, out int errno)
    {
        int fd = Libc.Socket(Libc.AF_UNIX, StreamFlags, 0);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        var sock = new FileDescriptor(fd);
        // addr is a copy on this frame that connect only reads.
        if (Libc.Connect(fd, &addr, (uint)sizeof(SockAddrUn)) == 0)
        {
            errno = 0;
            return sock;
        }
        errno = Marshal.GetLastPInvokeError();
        sock.Dispose();
        return null;
    }

    private static SockAddrUn Address(string path)
    {
        int length = Encoding.UTF8.GetByteCount(path);
        if (length == 0) throw new SysException("unix socket path is empty", Libc.ENAMETOOLONG);
        if (length > MaxPathBytes)
        {
            throw new SysException(
                $"unix socket path {path} is {length} bytes long; it holds at most {MaxPathBytes}", Libc.ENAMETOOLONG);
        }
        var addr = new SockAddrUn { Family = Libc.AF_UNIX };
        // Path is a 108-byte inline buffer of this local; length <= 107 keeps the zeroed NUL after it.
        Encoding.UTF8.GetBytes(path, new Span<byte>(addr.Path, SockAddrUn.PathCapacity));
        return addr;
    }

    /// <summary>Unlinks a socket file nobody listens on; refuses a live socket or a file of another kind.</summary>
    private static void RemoveStale(string path, SockAddrUn addr)
    {
        int fd = Libc.Open(path, Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            var e = SysException.Last($"open {path}");
            if (e.Errno == Libc.ENOENT) return;
            throw e;
        }
        Stat st;
        using (var file = new FileDescriptor(fd))
        {
            // st is a local of this frame that fstat fills.
            SysException.Check(Libc.FStat(file.Fd, &st), $"fstat {path}");
        }
        if ((st.Mode & Libc.S_IFMT) != Libc.S_IFSOCK)
            throw new SysException($"{path} exists and is not a socket", Libc.EEXIST);

        using var probe = Connect(addr, out int errno);
        if (probe is not null || errno == Libc.EAGAIN) // connected, or a full backlog: somebody is listening
            throw new SysException($"{path} is in use: another process is listening on it", Libc.EADDRINUSE);
        if (errno != Libc.ECONNREFUSED) throw new SysException($"connect {path}", errno);
        if (Libc.Unlink(path) != 0)
        {
            var u = SysException.Last($"unlink stale socket {path}");
            if (u.Errno != Libc.ENOENT) throw u;
        }
    }
}
