using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>File descriptors: open, close, read and write (plain and vectored), lseek, fstat, pipes and ioctl.</summary>
public static unsafe partial class Libc
{
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100,
        O_TRUNC = 0x200, O_APPEND = 0x400, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000, O_PATH = 0x200000;

    /// <summary>The open flags whose bits differ between x86_64 and arm64 (arm64's 0x4000 is O_DIRECTORY).</summary>
    public static readonly int O_DIRECT = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 0x4000 : 0x10000,
        O_NOFOLLOW = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 0x20000 : 0x8000;

    public const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFREG = 0x8000, S_IFBLK = 0x6000, S_IFDIR = 0x4000,
        S_IFCHR = 0x2000;

    /// <summary>ioctl requests that work on any fd: set non-blocking mode, set close-on-exec.</summary>
    public const ulong FIONBIO = 0x5421, FIOCLEX = 0x5451;

    public const long SYS_close_range = 436;
    public const uint CLOSE_RANGE_CLOEXEC = 4;

    [LibraryImport(Lib, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buf, nuint count);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buf, nuint count);

    /// <summary>lseek's whence for a sparse file: the next data at or after the offset, the next hole.</summary>
    public const int SEEK_DATA = 3, SEEK_HOLE = 4;

    [LibraryImport(Lib, EntryPoint = "lseek", SetLastError = true)]
    public static partial long LSeek(int fd, long offset, int whence);

    /// <summary>preadv2(2): readv at <paramref name="offset"/>, or at the current position (sockets, taps) when it
    /// is -1. Block and net I/O both use it (and <see cref="Pwritev2"/>), so the seccomp lists name two calls, not four.</summary>
    [LibraryImport(Lib, EntryPoint = "preadv2", SetLastError = true)]
    public static partial nint Preadv2(int fd, Iovec* iov, int iovcnt, long offset, int flags);

    [LibraryImport(Lib, EntryPoint = "pwritev2", SetLastError = true)]
    public static partial nint Pwritev2(int fd, Iovec* iov, int iovcnt, long offset, int flags);

    [LibraryImport(Lib, EntryPoint = "fstat", SetLastError = true)]
    public static partial int FStat(int fd, Stat* st);

    [LibraryImport(Lib, EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport(Lib, EntryPoint = "dup2", SetLastError = true)]
    public static partial int Dup2(int oldFd, int newFd);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, ulong arg);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, void* arg);
}

/// <summary>struct iovec: one buffer of a readv/writev-style call.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct Iovec
{
    public nint Base;
    public nuint Length;
}

/// <summary>struct stat as fstat fills it: x86_64's 144 bytes, which also hold arm64's 128. The device, inode,
/// size and blocks are at the same offsets on both; the mode is not (x86_64 puts st_nlink, 8 bytes, before it).</summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
public struct Stat
{
    [FieldOffset(0)] public ulong Dev;
    [FieldOffset(8)] public ulong Ino;
    [FieldOffset(16)] private uint _modeArm64;
    [FieldOffset(24)] private uint _modeX64;
    [FieldOffset(48)] public long Size;
    /// <summary>512-byte blocks allocated.</summary>
    [FieldOffset(64)] public long Blocks;

    private static readonly bool X64 = RuntimeInformation.ProcessArchitecture == Architecture.X64;

    public readonly uint Mode => X64 ? _modeX64 : _modeArm64;
}
