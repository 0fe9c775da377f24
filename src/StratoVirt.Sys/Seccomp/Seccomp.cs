using System.Runtime.InteropServices;

namespace StratoVirt.Sys.Seccomp;

/// <summary>Installs seccomp filters and reports a blocked call in one line before the process ends.</summary>
public static unsafe class Seccomp
{
    /// <summary>Exit status after a blocked call: 128 + SIGSYS, what a shell shows for a process SIGSYS killed.</summary>
    public const int BlockedExitCode = 128 + Libc.SIGSYS;

    /// <summary>Applies <paramref name="program"/> (a filter's <see cref="SeccompFilter.TrapProgram"/>) to the calling
    /// thread, which passes it to every thread it creates later. Sets NO_NEW_PRIVS first, as the kernel requires of
    /// an unprivileged caller.</summary>
    public static void Apply(ReadOnlySpan<BpfInstruction> program)
    {
        SysException.Check(Libc.Prctl(Libc.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)");
        // BpfInstruction has sock_filter's layout (u16 code, u8 jt, u8 jf, u32 k); the span is pinned for the call.
        fixed (BpfInstruction* instructions = program)
        {
            var fprog = new SockFprog { Length = (ushort)program.Length, Filter = instructions };
            if (Libc.SeccompSyscall(Libc.SYS_seccomp, Libc.SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0)
                throw SysException.Last("seccomp(SECCOMP_SET_MODE_FILTER)");
        }
    }

    /// <summary>The log fd of the installed SIGSYS handler; -1 before there is one.</summary>
    private static int s_reportFd = -1;

    /// <summary>Installs the SIGSYS handler that names the blocked call on stderr (and on <paramref name="logFd"/>
    /// when that is another fd), then ends the process with <see cref="BlockedExitCode"/>. Call it before any
    /// filter goes on: it maps the handler's code executable, which the filters forbid. A second call for the same
    /// fd keeps the handler there is.</summary>
    public static void ReportBlockedCalls(int logFd)
    {
        if (s_reportFd == logFd) return;
        var act = new KernelSigAction { Handler = SigSysHandler.Create(logFd), Flags = Libc.SA_SIGINFO };
        KernelSigAction old;
        // act and old are locals of this frame; sigaction reads one and fills the other.
        SysException.Check(Libc.SigAction(Libc.SIGSYS, &act, &old), "sigaction(SIGSYS)");
        s_reportFd = logFd;
    }
}
