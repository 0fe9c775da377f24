using System.Runtime.InteropServices;

[assembly: System.Runtime.CompilerServices.DisableRuntimeMarshalling]

namespace StratoVirt.Sys;

/// <summary>
/// The libc calls the VMM and ozone make, one file per family (Libc.Files.cs, Libc.Memory.cs, Libc.Sockets.cs, ...),
/// each with its constants and structs. Declarations return what libc returns; the classes above them (FileDescriptor,
/// Epoll, UnixSocket, ...) turn errno into a <see cref="SysException"/> or a negative errno result.
/// </summary>
public static partial class Libc
{
    private const string Lib = "libc";

    /// <summary>syscall(2) for calls glibc does not wrap (pivot_root) or wraps only in newer versions (close_range);
    /// glibc's syscall is assembly that ignores the variadic-call register conventions, so fixed arguments are safe.</summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall(long number, nint a1, nint a2, nint a3);

    /// <summary>uname(2)'s number: the call no seccomp list allows, which the seccomp probe makes.</summary>
    public static readonly long SYS_uname = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 63 : 160;
}
