namespace StratoVirt.Machine.Qmp;

/// <summary>What QMP commands need from the machine. Called on the thread of the loop the server runs on.</summary>
public interface IQmpCommands
{
    /// <summary>The <c>quit</c> command, after its reply was queued: the machine ends and sends SHUTDOWN.</summary>
    void Quit();

    /// <summary>The <c>system_reset</c> command, after its reply was queued: a microVM ends on reset (RESET, then
    /// SHUTDOWN).</summary>
    void SystemReset();

    /// <summary>The <c>system_powerdown</c> command, after its reply was queued: a microVM has no power button, so
    /// it ends (POWERDOWN, then SHUTDOWN).</summary>
    void SystemPowerdown();

    /// <summary>The guest's memory size as the balloon leaves it (RAM minus the balloon), in bytes; null when
    /// the machine has no balloon device.</summary>
    ulong? BalloonActual { get; }

    /// <summary>The <c>balloon</c> command: asks the guest to bring its memory to <paramref name="targetBytes"/>.
    /// False with a message when there is no balloon or the value cannot be applied.</summary>
    bool TrySetBalloon(ulong targetBytes, out string? error);

    /// <summary>The vCPUs as <c>query-cpus</c> reports them: index and host thread id (Kata reads the ids to pin
    /// vCPU threads).</summary>
    IReadOnlyList<(int Index, int ThreadId)> CpuThreads { get; }

    /// <summary>False while the vCPUs are paused (<c>stop</c>, or -S until <c>cont</c>).</summary>
    bool Running { get; }

    /// <summary>The <c>stop</c> command: pause every vCPU (and the guest clock). No-op when already paused.</summary>
    void Stop();

    /// <summary>The <c>cont</c> command: resume. No-op when running.</summary>
    void Cont();
}
