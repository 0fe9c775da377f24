using System.Runtime.InteropServices;
using System.Text;

namespace StratoVirt.Sys;

/// <summary>Non-blocking AF_UNIX stream sockets: a listener bound to a path, accept, send and receive.</summary>
public static unsafe class UnixSocket
{
    /// <summary>The longest path sun_path holds, leaving room for its terminating NUL.</summary>
    public const int MaxPathBytes = SockAddrUn.PathCapacity - 1;

    /// <summary>
    /// Binds a listening socket at <paramref name="path"/> with file mode <paramref name="mode"/>. A stale socket
    /// file (nobody listening) is replaced; a live socket or any other kind of file is an error. The mode is set
    /// before listen(2), so no client can connect while the file still has the umask's mode.
    /// </summary>
    public static FileDescriptor Listen(string path, uint mode, int backlog = 8)
    {
        var addr = Address(path);
        RemoveStale(path, addr);
        var sock = NewSocket($"socket for {path}");
        bool bound = false;
        try
        {
            SysException.Check(Libc.Bind(sock.Fd, &addr, (uint)sizeof(SockAddrUn)), $"bind {path}");
            bound = true;
            SysException.Check(Libc.Chmod(path, mode), $"chmod {path}");
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

    /// <summary>Accepts one pending connection as a non-blocking fd; null when none is pending.</summary>
    public static FileDescriptor? Accept(FileDescriptor listener)
    {
        int fd = Libc.Accept4(listener.Fd, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
        if (fd >= 0) return new FileDescriptor(fd);
        int errno = Marshal.GetLastPInvokeError();
        if (errno is Libc.EAGAIN or Libc.EINTR or Libc.ECONNRESET) return null;
        throw new SysException("accept4", errno);
    }

    /// <summary>Reads what is there: the byte count, 0 at end of stream, -1 if nothing is ready.</summary>
    public static int Receive(FileDescriptor fd, Span<byte> buffer)
    {
        // The span is pinned for the duration of the call and recv writes at most its length.
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = Libc.Recv(fd.Fd, p, (nuint)buffer.Length, 0);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR) continue;
                if (errno == Libc.EAGAIN) return -1;
                throw new SysException("recv", errno);
            }
        }
    }

    /// <summary>Writes what the socket takes now (0 if it is full); a closed peer is an exception, not SIGPIPE.</summary>
    public static int Send(FileDescriptor fd, ReadOnlySpan<byte> data)
    {
        // The span is pinned for the duration of the call and send reads at most its length.
        fixed (byte* p = data)
        {
            while (true)
            {
                nint n = Libc.Send(fd.Fd, p, (nuint)data.Length, Libc.MSG_NOSIGNAL);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR) continue;
                if (errno == Libc.EAGAIN) return 0;
                throw new SysException("send", errno);
            }
        }
    }

    private static FileDescriptor NewSocket(string what) => new(SysException.Check(
        Libc.Socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0), what));

    private static SockAddrUn Address(string path)
    {
        int length = Encoding.UTF8.GetByteCount(path);
        if (length == 0 || length > MaxPathBytes)
        {
            throw new SysException(
                $"unix socket path '{path}' is {length} bytes; it must be 1 to {MaxPathBytes}", Libc.ENAMETOOLONG);
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
            SysException.Check(Libc.FStat(file.Fd, &st), $"fstat {path}");
        }
        if ((st.Mode & Libc.S_IFMT) != Libc.S_IFSOCK)
            throw new SysException($"{path} exists and is not a socket", Libc.EEXIST);

        using var probe = NewSocket($"socket to probe {path}");
        if (Libc.Connect(probe.Fd, &addr, (uint)sizeof(SockAddrUn)) == 0)
            throw new SysException($"{path}: another process is listening on it", Libc.EADDRINUSE);
        var err = SysException.Last($"connect {path}");
        if (err.Errno == Libc.EAGAIN) // a full backlog: somebody is listening
            throw new SysException($"{path}: another process is listening on it", Libc.EADDRINUSE);
        if (err.Errno != Libc.ECONNREFUSED) throw err;
        if (Libc.Unlink(path) != 0)
        {
            var u = SysException.Last($"unlink stale socket {path}");
            if (u.Errno != Libc.ENOENT) throw u;
        }
    }
}
