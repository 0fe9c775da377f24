using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Terminals: attributes (raw mode for a console) and pseudo-terminals for pty chardevs.</summary>
public static unsafe partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "isatty")]
    public static partial int IsATty(int fd);

    [LibraryImport(Lib, EntryPoint = "tcgetattr", SetLastError = true)]
    public static partial int TcGetAttr(int fd, Termios* t);

    [LibraryImport(Lib, EntryPoint = "tcsetattr", SetLastError = true)]
    public static partial int TcSetAttr(int fd, int optionalActions, Termios* t);

    [LibraryImport(Lib, EntryPoint = "cfmakeraw")]
    public static partial void CfMakeRaw(Termios* t);

    [LibraryImport(Lib, EntryPoint = "posix_openpt", SetLastError = true)]
    public static partial int PosixOpenPt(int flags);

    [LibraryImport(Lib, EntryPoint = "grantpt", SetLastError = true)]
    public static partial int GrantPt(int fd);

    [LibraryImport(Lib, EntryPoint = "unlockpt", SetLastError = true)]
    public static partial int UnlockPt(int fd);

    /// <summary>Returns 0 or an errno value (not -1): ptsname_r reports its error as the result.</summary>
    [LibraryImport(Lib, EntryPoint = "ptsname_r")]
    public static partial int PtsNameR(int fd, byte* buf, nuint buflen);
}

/// <summary>struct termios on x86_64 (glibc's layout).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct Termios
{
    public uint IFlag, OFlag, CFlag, LFlag;
    public byte Line;
    public fixed byte Cc[32];
    public uint ISpeed, OSpeed;
}
