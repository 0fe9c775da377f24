using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>
/// preadv2/pwritev2 over iovecs the caller built from memory it knows to be mapped (guest RAM through
/// GuestMemory's checked accessors, or pinned buffers): the byte count, or a negative errno (-EAGAIN: not now).
/// EINTR is retried. One call pair serves disks (with an offset) and taps (offset -1, as readv/writev), so the
/// seccomp lists name two calls, not four. Neither throws nor allocates.
/// </summary>
public static unsafe class VectoredIo
{
    public static nint Read(int fd, ReadOnlySpan<Iovec> iov, long offset) => Transfer(false, fd, iov, offset);

    public static nint Write(int fd, ReadOnlySpan<Iovec> iov, long offset) => Transfer(true, fd, iov, offset);

    /// <summary>Writes all of <paramref name="data"/> at <paramref name="offset"/>: 0, or a negative errno (-ENOSPC
    /// when the file system takes no more).</summary>
    public static int WriteAll(int fd, ReadOnlySpan<byte> data, long offset)
    {
        // The span is pinned while the iovecs that name parts of it are in use.
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                var iov = new Iovec { Base = (nint)(p + done), Length = (nuint)(data.Length - done) };
                nint n = Write(fd, [iov], offset + done);
                if (n < 0) return (int)n;
                if (n == 0) return -Libc.ENOSPC;
                done += (int)n;
            }
        }
        return 0;
    }

    private static nint Transfer(bool write, int fd, ReadOnlySpan<Iovec> iov, long offset)
    {
        // The iovec array is pinned for the call; the buffers it names are the caller's, mapped and sized as it says.
        fixed (Iovec* p = iov)
        {
            while (true)
            {
                nint n = write ? Libc.Pwritev2(fd, p, iov.Length, offset, 0) : Libc.Preadv2(fd, p, iov.Length, offset, 0);
                if (n >= 0) return n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR) return -errno;
            }
        }
    }
}
