using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>
/// A signal whose only effect is to interrupt a blocking call in the thread it is sent to (KVM_RUN then returns
/// EINTR). Its handler is a native no-op (libc's sched_yield), so no managed code runs in signal context and the
/// runtime starts no extra threads for it.
/// </summary>
public static unsafe class InterruptSignal
{
    /// <summary>Installs the no-op handler for <paramref name="signal"/>, without SA_RESTART.</summary>
    public static void Install(int signal)
    {
        nint libc = NativeLibrary.Load("libc.so.6");
        var act = new KernelSigAction { Handler = NativeLibrary.GetExport(libc, "sched_yield") };
        KernelSigAction old;
        // act and old are locals of this frame; glibc's sigaction supplies its own restorer, and SA_RESTART is left
        // off so that the interrupted call returns EINTR.
        SysException.Check(Libc.SigAction(signal, &act, &old), $"sigaction({signal})");
    }
}
