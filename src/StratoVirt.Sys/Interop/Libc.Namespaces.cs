using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Namespaces, mounts and the root folder: what puts a process in a sandbox (and a test in its own network).</summary>
public static unsafe partial class Libc
{
    public const int CLONE_NEWNS = 0x20000, CLONE_NEWUTS = 0x04000000, CLONE_NEWIPC = 0x08000000,
        CLONE_NEWPID = 0x20000000, CLONE_NEWNET = 0x40000000;
    public const ulong MS_BIND = 0x1000, MS_MOVE = 0x2000, MS_REC = 0x4000, MS_PRIVATE = 0x40000, MS_SLAVE = 0x80000;
    public const int MNT_DETACH = 2;
    /// <summary>pivot_root: 155 on x86_64, 41 on arm64 (the generic table).</summary>
    public static readonly long SYS_pivot_root = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 155 : 41;

    /// <summary>unshare(2); namespaces such as CLONE_NEWNET apply to the calling thread only.</summary>
    [LibraryImport(Lib, EntryPoint = "unshare", SetLastError = true)]
    public static partial int Unshare(int flags);

    [LibraryImport(Lib, EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(int fd, int nsType);

    [LibraryImport(Lib, EntryPoint = "sethostname", SetLastError = true)]
    public static partial int SetHostName(byte* name, nuint length);

    [LibraryImport(Lib, EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mount(string? source, string target, string? fsType, ulong flags, nint data);

    [LibraryImport(Lib, EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport(Lib, EntryPoint = "chroot", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Chroot(string path);
}
