using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>
/// read(2) and write(2) on any fd with errno as the result: the byte count (0 from a read: end of input), or a
/// negative errno (-EAGAIN: not now). EINTR is retried. Neither throws nor allocates.
/// </summary>
public static unsafe class FileIo
{
    public static int Read(int fd, Span<byte> buffer)
    {
        // The span is pinned for the call and read(2) writes at most its length.
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = Libc.Read(fd, p, (nuint)buffer.Length);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR) return -errno;
            }
        }
    }

    public static int Write(int fd, ReadOnlySpan<byte> data)
    {
        // The span is pinned for the call and write(2) reads at most its length.
        fixed (byte* p = data)
        {
            while (true)
            {
                nint n = Libc.Write(fd, p, (nuint)data.Length);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR) return -errno;
            }
        }
    }
}
