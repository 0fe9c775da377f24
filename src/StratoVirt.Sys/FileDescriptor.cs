using Microsoft.Win32.SafeHandles;

namespace StratoVirt.Sys;

/// <summary>Owns one file descriptor and closes it exactly once.</summary>
public sealed class FileDescriptor : SafeHandleZeroOrMinusOneIsInvalid
{
    public FileDescriptor(int fd) : base(ownsHandle: true) => SetHandle(fd);

    public int Fd => (int)handle;

    /// <summary>Opens a path, naming it in the error on failure.</summary>
    public static FileDescriptor Open(string path, int flags, int mode = 0)
    {
        int fd = Libc.Open(path, flags | Libc.O_CLOEXEC, mode);
        if (fd < 0) throw SysException.Last($"open {path}");
        return new FileDescriptor(fd);
    }

    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}
