using StratoVirt.Sys;

namespace StratoVirt.Machine;

/// <summary>The signal that forces a vCPU thread out of KVM_RUN (see <see cref="InterruptSignal"/>).</summary>
internal static class VcpuKick
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
            InterruptSignal.Install(Signal);
            _installed = true;
        }
    }
}
