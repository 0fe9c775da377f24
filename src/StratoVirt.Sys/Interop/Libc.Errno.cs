using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>errno values the VMM tells apart, and their text.</summary>
public static unsafe partial class Libc
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, ECHILD = 10, EAGAIN = 11, ENOMEM = 12,
        EACCES = 13, EBUSY = 16, EEXIST = 17, ENODEV = 19, EISDIR = 21, EINVAL = 22, ENOTTY = 25, ENOSPC = 28, EPIPE = 32,
        ENAMETOOLONG = 36, ENOSYS = 38, ENOTEMPTY = 39, EBADFD = 77, EOPNOTSUPP = 95, EADDRINUSE = 98,
        EADDRNOTAVAIL = 99, ECONNRESET = 104, ECONNREFUSED = 111;

    [LibraryImport(Lib, EntryPoint = "strerror")]
    private static partial byte* StrError(int errnum);

    /// <summary>The C library's text for an errno value.</summary>
    public static string ErrorText(int errno)
    {
        // strerror returns a pointer to a static NUL-terminated string owned by libc.
        byte* s = StrError(errno);
        return s == null ? $"errno {errno}" : Marshal.PtrToStringUTF8((nint)s) ?? $"errno {errno}";
    }
}
