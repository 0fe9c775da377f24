using System.Runtime.InteropServices;
using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>
/// The signal that forces a vCPU thread out of KVM_RUN. Its handler is a native no-op (libc's sched_yield), so no
/// managed code runs in signal context and the runtime starts no extra threads for it.
/// </summary>
internal static unsafe class VcpuKick
{
    /// <summary>SIGRTMIN+1: 34 belongs to the .NET runtime, 35 is what upstream StratoVirt uses.</summary>
    public const int Signal = 35;
    private static bool _installed;
    private static readonly Lock Gate = new();

    public static void Install()
    {
        lock (Gate)
        {
            if (_installed) return;
            nint libc = NativeLibrary.Load("libc.so.6");
            var act = new KernelSigAction { Handler = NativeLibrary.GetExport(libc, "sched_yield") };
            KernelSigAction old;
            // glibc's sigaction supplies its own restorer; SA_RESTART is left off so KVM_RUN returns EINTR.
            SysException.Check(Libc.SigAction(Signal, &act, &old), $"sigaction({Signal})");
            _installed = true;
        }
    }
}
