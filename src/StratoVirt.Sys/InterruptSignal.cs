using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>
/// A signal whose only effect is to interrupt a blocking call in the thread it is sent to (KVM_RUN then returns
/// EINTR). Its handler is one native return instruction in a page of its own: no managed code runs in signal
/// context, the runtime starts no extra threads for it, and no shared library is asked for a function (the VMM is
/// a static binary, where dlopen cannot load libc).
/// </summary>
public static unsafe class InterruptSignal
{
    /// <summary>Installs the no-op handler for <paramref name="signal"/>, without SA_RESTART. Call it before the
    /// seccomp filters go on: mapping the handler needs PROT_EXEC, which no list allows.</summary>
    public static void Install(int signal)
    {
        var act = new KernelSigAction { Handler = MapReturn() };
        KernelSigAction old;
        // act and old are locals of this frame; glibc's sigaction supplies its own restorer, and SA_RESTART is left
        // off so that the interrupted call returns EINTR.
        SysException.Check(Libc.SigAction(signal, &act, &old), $"sigaction({signal})");
    }

    /// <summary>One return instruction (x86_64 RET, aarch64 RET x30): a signal handler returns to the restorer
    /// the kernel or glibc set up.</summary>
    private static nint MapReturn() => ExecutableCode.Map(
        RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? [0xc0, 0x03, 0x5f, 0xd6] : [0xc3], "interrupt signal handler");
}
