using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StratoVirt.Sys.Seccomp;

/// <summary>Installs seccomp filters and reports a blocked call in one line before the process ends.</summary>
public static unsafe class Seccomp
{
    /// <summary>Exit status after a blocked call: 128 + SIGSYS, what a shell shows for a process SIGSYS killed.</summary>
    public const int BlockedExitCode = 128 + Libc.SIGSYS;

    private static int _logFd = -1;

    /// <summary>Applies <paramref name="filter"/> to the calling thread (calls outside it raise SIGSYS), which
    /// passes it to every thread it creates later. Sets NO_NEW_PRIVS first, as the kernel requires of an
    /// unprivileged caller.</summary>
    public static void Apply(SeccompFilter filter)
    {
        var program = filter.TrapProgram;
        SysException.Check(Libc.Prctl(Libc.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)");
        // BpfInstruction has sock_filter's layout (u16 code, u8 jt, u8 jf, u32 k); the array is pinned for the call.
        fixed (BpfInstruction* instructions = program)
        {
            var fprog = new SockFprog { Length = (ushort)program.Length, Filter = instructions };
            if (Libc.SeccompSyscall(Libc.SYS_seccomp, Libc.SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0)
                throw SysException.Last("seccomp(SECCOMP_SET_MODE_FILTER)");
        }
    }

    /// <summary>Installs the SIGSYS handler that names the blocked call on stderr (and on <paramref name="logFd"/>
    /// when that is another fd), then ends the process with <see cref="BlockedExitCode"/>.</summary>
    public static void ReportBlockedCalls(int logFd)
    {
        _logFd = logFd;
        _ = SyscallNames.Utf8Name(0); // runs the table's initializer now, not in the handler
        var act = new KernelSigAction
        {
            Handler = (nint)(delegate* unmanaged<int, byte*, void*, void>)&OnSigSys,
            Flags = Libc.SA_SIGINFO,
        };
        KernelSigAction old;
        SysException.Check(Libc.SigAction(Libc.SIGSYS, &act, &old), "sigaction(SIGSYS)");
    }

    /// <summary>Runs in signal context on the thread whose call was blocked: it formats into a stack buffer,
    /// writes, and exits; it allocates nothing and takes no lock. siginfo_t's SIGSYS fields: si_syscall at
    /// byte 24.</summary>
    [UnmanagedCallersOnly]
    private static void OnSigSys(int signal, byte* info, void* context)
    {
        int nr = *(int*)(info + 24);
        Span<byte> line = stackalloc byte[160];
        int n = 0;
        n += Append(line[n..], "stratovirt: seccomp blocked system call "u8);
        var name = SyscallNames.Utf8Name(nr);
        n += Append(line[n..], name.IsEmpty ? "?"u8 : name);
        n += Append(line[n..], " ("u8);
        n += FormatDecimal(line[n..], (uint)nr);
        n += Append(line[n..], "); stopping the VM\n"u8);
        fixed (byte* p = line)
        {
            Libc.Write(2, p, (nuint)n);
            if (_logFd > 2) Libc.Write(_logFd, p, (nuint)n);
        }
        Libc.Exit(BlockedExitCode);
    }

    /// <summary>Writes a number in decimal (no culture data: this runs in a signal handler).</summary>
    private static int FormatDecimal(Span<byte> destination, uint value)
    {
        Span<byte> digits = stackalloc byte[10];
        int count = 0;
        do
        {
            digits[count++] = (byte)('0' + value % 10);
            value /= 10;
        } while (value > 0 && count < digits.Length);
        int n = Math.Min(count, destination.Length);
        for (int i = 0; i < n; i++) destination[i] = digits[count - 1 - i];
        return n;
    }

    private static int Append(Span<byte> destination, ReadOnlySpan<byte> text)
    {
        int n = Math.Min(text.Length, destination.Length);
        text[..n].CopyTo(destination);
        return n;
    }
}
