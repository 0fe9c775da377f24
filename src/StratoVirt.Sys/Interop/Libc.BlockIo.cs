using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>What a disk image needs beyond reads and writes: locks, flushes, holes and a block device's size.</summary>
public static unsafe partial class Libc
{
    /// <summary>ioctl: a block device's size in bytes (_IOR(0x12, 114, size_t)).</summary>
    public const ulong BLKGETSIZE64 = 0x80081272;
    /// <summary>Open-file-description record locks (fcntl F_OFD_*): owned by the open file, not the process.</summary>
    public const int F_OFD_SETLK = 37;
    public const short F_RDLCK = 0, F_WRLCK = 1;
    public const int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2, FALLOC_FL_ZERO_RANGE = 0x10;

    /// <summary>fcntl(2) with a struct flock argument (the lock commands).</summary>
    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int FcntlLock(int fd, int cmd, Flock* lk);

    [LibraryImport(Lib, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);

    [LibraryImport(Lib, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int FDataSync(int fd);
}

/// <summary>struct flock on x86_64 (fcntl record locks).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct Flock
{
    public short Type, Whence;
    public long Start, Length;
    public int Pid;
}
