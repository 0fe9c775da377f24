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

    /// <summary>The bytes upstream StratoVirt locks in an image, after QEMU's scheme of one byte per permission.</summary>
    private static readonly long[] ImageLockBytes = [101, 102, 202];

    /// <summary>
    /// Keeps two VMs off one image file (a drive, a flash unit): exclusive for read-write, shared for read-only, on
    /// the bytes upstream StratoVirt and QEMU lock, so it conflicts with their record locks and between two
    /// descriptors of one process. A holder elsewhere is a SysException naming <paramref name="image"/>.
    /// </summary>
    public static void LockImage(int fd, string image, bool readOnly)
    {
        foreach (long b in ImageLockBytes)
        {
            int errno = TryLock(fd, b, 1, exclusive: !readOnly);
            if (errno == 0) continue;
            if (errno is Libc.EAGAIN or Libc.EACCES)
                throw new SysException($"{image} is in use by another VM or drive " +
                                       $"(cannot take its {(readOnly ? "shared" : "exclusive")} lock)", errno);
            throw new SysException($"lock {image}", errno);
        }
    }
}
