using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>
/// read, write and poll on one stream fd (a pipe, terminal, socket or regular file) through spans, for the chardevs:
/// each returns a count or the ready events, or a negative errno.
/// </summary>
public static unsafe class StreamIo
{
    /// <summary>Reads what is there, retrying on EINTR: the byte count, 0 at end of input, or a negative errno
    /// (-EAGAIN: nothing is ready on a non-blocking fd).</summary>
    public static int Read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                // The span is pinned for the call; read writes at most its length.
                nint n = Libc.Read(fd, p, (nuint)buffer.Length);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR) return -errno;
            }
        }
    }

    /// <summary>Writes what the fd takes now, retrying on EINTR: the byte count, or a negative errno (-EAGAIN: a
    /// non-blocking fd is full; -EPIPE, -EIO: the reader is gone).</summary>
    public static int Write(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            while (true)
            {
                // The span is pinned for the call; write reads at most its length.
                nint n = Libc.Write(fd, p, (nuint)data.Length);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR) return -errno;
            }
        }
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> (0: only looks) for <paramref name="events"/>
    /// (<see cref="Libc.POLLIN"/>, <see cref="Libc.POLLOUT"/>) on <paramref name="fd"/>: the ready events (hang-ups
    /// and errors included), 0 when the time passed first, or a negative errno (-EINTR: a signal came first).</summary>
    public static int Poll(int fd, short events, int timeoutMs)
    {
        var pfd = new PollFd { Fd = fd, Events = events };
        // pfd is a local of this frame; poll writes only its revents.
        int r = Libc.Poll(&pfd, 1, timeoutMs);
        if (r < 0) return -Marshal.GetLastPInvokeError();
        return r == 0 ? 0 : (ushort)pfd.REvents;
    }
}
