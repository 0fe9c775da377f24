using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Open-file-description byte-range locks (fcntl F_OFD_SETLK): they belong to the open file, not the
/// process, so two descriptors of one process conflict too, and they go away when the file is closed.</summary>
public static class ByteRangeLock
{
    /// <summary>Takes a shared or exclusive lock on [<paramref name="start"/>, +<paramref name="length"/>) without
    /// waiting: 0, or the errno (EAGAIN or EACCES: someone else holds a conflicting lock).</summary>
    public static unsafe int TryLock(int fd, long start, long length, bool exclusive)
    {
        var lk = new Flock { Type = exclusive ? Libc.F_WRLCK : Libc.F_RDLCK, Whence = 0, Start = start, Length = length };
        // lk is a local of this frame that fcntl only reads.
        return Libc.FcntlLock(fd, Libc.F_OFD_SETLK, &lk) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }
}
