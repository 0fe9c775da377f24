using System.Runtime.InteropServices;
using System.Text;

namespace StratoVirt.Sys;

/// <summary>
/// Non-blocking Unix-domain stream sockets for the vsock backend. Calls that can fail per connection return a
/// negative errno instead of throwing, so the device's hot path neither throws nor allocates.
/// </summary>
public static unsafe class VsockUnixSocket
{
    private const int Flags = Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC;

    /// <summary>The longest path a sockaddr_un holds (its last byte is the terminating NUL).</summary>
    public const int MaxPathBytes = SockAddrUn.PathCapacity - 1;

    /// <summary>Creates, binds and listens on a non-blocking socket at <paramref name="path"/>.</summary>
    public static FileDescriptor Listen(string path, int backlog = 64)
    {
        Span<byte> bytes = stackalloc byte[MaxPathBytes + 1];
        int length = Encode(path, bytes);
        if (length < 0) throw new ArgumentException($"Unix socket path '{path}' is longer than {MaxPathBytes} bytes");
        var fd = new FileDescriptor(SysException.Check(Libc.Socket(Libc.AF_UNIX, Flags, 0), "socket(AF_UNIX)"));
        try
        {
            var addr = Address(bytes[..length]);
            SysException.Check(Libc.Bind(fd.Fd, &addr, (uint)sizeof(SockAddrUn)), $"bind {path}");
            SysException.Check(Libc.Listen(fd.Fd, backlog), $"listen {path}");
            return fd;
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Accepts one pending connection as a non-blocking fd; a negative errno (EAGAIN: none pending).</summary>
    public static int Accept(int listener)
    {
        int fd = Libc.Accept4(listener, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
        return fd >= 0 ? fd : -Marshal.GetLastPInvokeError();
    }

    /// <summary>Connects a new non-blocking socket to the path in <paramref name="path"/> (UTF-8, no NUL); returns
    /// the fd or a negative errno. A Unix stream connect completes at once or fails (EAGAIN: backlog full).</summary>
    public static int Connect(ReadOnlySpan<byte> path)
    {
        if (path.Length > MaxPathBytes) return -Libc.EINVAL;
        int fd = Libc.Socket(Libc.AF_UNIX, Flags, 0);
        if (fd < 0) return -Marshal.GetLastPInvokeError();
        var addr = Address(path);
        if (Libc.Connect(fd, &addr, (uint)sizeof(SockAddrUn)) == 0) return fd;
        int errno = Marshal.GetLastPInvokeError();
        Libc.Close(fd);
        return -errno;
    }

    /// <summary>Sends without blocking and without SIGPIPE; bytes sent, or a negative errno.</summary>
    public static nint Send(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            // p points at a pinned span of data.Length bytes for the duration of the call.
            nint n = Libc.Send(fd, p, (nuint)data.Length, Libc.MSG_DONTWAIT | Libc.MSG_NOSIGNAL);
            return n >= 0 ? n : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Receives without blocking; bytes read (0: the peer closed), or a negative errno.</summary>
    public static nint Receive(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            // p points at a pinned span of buffer.Length bytes for the duration of the call.
            nint n = Libc.Recv(fd, p, (nuint)buffer.Length, Libc.MSG_DONTWAIT);
            return n >= 0 ? n : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>shutdown(2); errors (the peer is already gone) are ignored.</summary>
    public static void Shutdown(int fd, int how) => Libc.Shutdown(fd, how);

    /// <summary>UTF-8 bytes of <paramref name="path"/> into <paramref name="destination"/>; -1 if they do not fit.</summary>
    public static int Encode(string path, Span<byte> destination)
    {
        int max = Math.Min(destination.Length, MaxPathBytes);
        return Encoding.UTF8.GetByteCount(path) > max ? -1 : Encoding.UTF8.GetBytes(path, destination);
    }

    private static SockAddrUn Address(ReadOnlySpan<byte> path)
    {
        var addr = new SockAddrUn { Family = Libc.AF_UNIX };
        // The fixed buffer lives inside the local struct; path is at most MaxPathBytes, so the NUL still fits.
        path.CopyTo(new Span<byte>(addr.Path, SockAddrUn.PathCapacity));
        return addr;
    }
}
