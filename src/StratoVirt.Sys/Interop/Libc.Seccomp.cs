using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>seccomp(2): installing a BPF system call filter on the calling thread.</summary>
public static unsafe partial class Libc
{
    public const int SYS_seccomp = 317, SECCOMP_SET_MODE_FILTER = 1;

    /// <summary>seccomp(2) through syscall(2) (see <see cref="Syscall"/> for why fixed arguments are safe).</summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long SeccompSyscall(long number, int operation, uint flags, SockFprog* program);
}

/// <summary>struct sock_fprog: a BPF program's length and instructions.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SockFprog
{
    public ushort Length;
    public void* Filter;
}
