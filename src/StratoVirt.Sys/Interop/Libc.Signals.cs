using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>Signals: handlers, masks, signalfd, and sending one to a process or thread.</summary>
public static unsafe partial class Libc
{
    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGKILL = 9, SIGTERM = 15, SIGSYS = 31;
    public const int SIG_BLOCK = 0, SIG_UNBLOCK = 1, SIG_SETMASK = 2;
    public const int SA_SIGINFO = 4;

    [LibraryImport(Lib, EntryPoint = "sigaction", SetLastError = true)]
    public static partial int SigAction(int sig, KernelSigAction* act, KernelSigAction* oldact);

    [LibraryImport(Lib, EntryPoint = "pthread_sigmask")]
    public static partial int PthreadSigmask(int how, ulong* set, ulong* oldset);

    /// <summary>signalfd(3): <paramref name="mask"/> is a sigset_t (glibc's is 128 bytes).</summary>
    [LibraryImport(Lib, EntryPoint = "signalfd", SetLastError = true)]
    public static partial int SignalFd(int fd, ulong* mask, int flags);

    [LibraryImport(Lib, EntryPoint = "tgkill", SetLastError = true)]
    public static partial int TgKill(int tgid, int tid, int sig);

    [LibraryImport(Lib, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int sig);
}

/// <summary>glibc's struct sigaction on x86_64.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KernelSigAction
{
    public nint Handler;
    public ulong Mask0, Mask1, Mask2, Mask3, Mask4, Mask5, Mask6, Mask7,
        Mask8, Mask9, Mask10, Mask11, Mask12, Mask13, Mask14, Mask15;
    public int Flags;
    public nint Restorer;
}
