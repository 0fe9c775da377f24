using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>What fstat(2) says about an open file: its identity (device and inode), type and size.</summary>
public readonly record struct FileStatus(ulong Device, ulong Inode, uint Mode, long Size)
{
    public bool IsDirectory => (Mode & Libc.S_IFMT) == Libc.S_IFDIR;
    public bool IsRegularFile => (Mode & Libc.S_IFMT) == Libc.S_IFREG;
    public bool IsBlockDevice => (Mode & Libc.S_IFMT) == Libc.S_IFBLK;

    /// <summary>fstat of <paramref name="fd"/>: 0, or the errno with <paramref name="status"/> left empty.</summary>
    public static unsafe int Get(int fd, out FileStatus status)
    {
        Stat st;
        // st is a local of this frame that fstat fills.
        if (Libc.FStat(fd, &st) != 0)
        {
            status = default;
            return Marshal.GetLastPInvokeError();
        }
        status = new FileStatus(st.Dev, st.Ino, st.Mode, st.Size);
        return 0;
    }
}
