using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>seccomp(2): installing a BPF system call filter on the calling thread.</summary>
public static unsafe partial class Libc
{
    public const int SECCOMP_SET_MODE_FILTER = 1;
    /// <summary>seccomp: 317 on x86_64, 277 on arm64 (the generic table).</summary>
    public static readonly int SYS_seccomp = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 317 : 277;

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
