using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Allocates a pseudo-terminal for a console a user attaches to: the VMM keeps the master side.</summary>
public static unsafe class PseudoTerminal
{
    /// <summary>Opens a new pseudo-terminal: its master (raw mode, non-blocking, close-on-exec) and the path of its
    /// slave (e.g. /dev/pts/3), which the caller or a user opens.</summary>
    /// <exception cref="SysException">No pseudo-terminal could be allocated or set up.</exception>
    public static (FileDescriptor Master, string SlavePath) Open()
    {
        int fd = Libc.PosixOpenPt(Libc.O_RDWR | Libc.O_NOCTTY | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0) throw SysException.Last("posix_openpt");
        var master = new FileDescriptor(fd);
        try
        {
            SysException.Check(Libc.GrantPt(fd), "grantpt");
            SysException.Check(Libc.UnlockPt(fd), "unlockpt");
            string slave = SlaveName(fd);
            Termios t;
            // t is a local of this frame, filled by tcgetattr and only read by the two calls after it.
            SysException.Check(Libc.TcGetAttr(fd, &t), "tcgetattr");
            Libc.CfMakeRaw(&t);
            SysException.Check(Libc.TcSetAttr(fd, 0 /* TCSANOW */, &t), "tcsetattr");
            return (master, slave);
        }
        catch
        {
            master.Dispose();
            throw;
        }
    }

    private static string SlaveName(int master)
    {
        Span<byte> name = stackalloc byte[128];
        fixed (byte* p = name)
        {
            // ptsname_r writes a NUL-terminated name of at most name.Length bytes into the pinned buffer.
            int rc = Libc.PtsNameR(master, p, (nuint)name.Length);
            if (rc != 0) throw new SysException("ptsname_r", rc);
            return Marshal.PtrToStringUTF8((nint)p)!;
        }
    }
}
