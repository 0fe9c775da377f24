using StratoVirt.Devices.Pci;

namespace StratoVirt.Machine;

/// <summary>What a management client (QMP) can ask of a running machine. Called on the main loop's thread.</summary>
public interface IMachineControl
{
    /// <summary>Ends the VM (the <c>quit</c> command).</summary>
    void Quit();

    /// <summary>Resets the VM (<c>system_reset</c>); a microVM (or a q35 with -no-reboot) ends on reset.</summary>
    void SystemReset();

    /// <summary>Presses the power button (<c>system_powerdown</c>: q35's ACPI power button); a microVM has none,
    /// so it ends.</summary>
    void SystemPowerdown();

    /// <summary>The guest's memory size as the balloon leaves it (RAM minus the balloon), in bytes; null when
    /// the machine has no balloon device.</summary>
    ulong? BalloonActual { get; }

    /// <summary>Asks the guest to bring its memory to <paramref name="targetBytes"/>. False with a message when there
    /// is no balloon or the value cannot be applied.</summary>
    bool TrySetBalloon(ulong targetBytes, out string? error);

    /// <summary>The vCPUs: index and host thread id (Kata reads the ids to pin vCPU threads).</summary>
    IReadOnlyList<(int Index, int ThreadId)> CpuThreads { get; }

    /// <summary>False while the vCPUs are paused (stop, or -S until cont).</summary>
    bool Running { get; }

    /// <summary>Pauses every vCPU (and the guest clock); no-op when already paused.</summary>
    void Stop();

    /// <summary>Resumes; no-op when running.</summary>
    void Cont();

    /// <summary>Writes a snapshot of the paused machine (<c>migrate</c> to <c>file:</c>) into the existing
    /// <paramref name="directory"/>: its <c>memory</c> and <c>state</c> files. False with the reason when the VM is
    /// running or the snapshot failed (nothing is left behind; the VM stays paused and usable).</summary>
    bool TrySnapshot(string directory, out string? error);

    /// <summary>The last snapshot's progress for <c>query-migrate</c>.</summary>
    SnapshotStatus SnapshotStatus { get; }

    /// <summary>The functions on the PCI root bus (pcie.0) for <c>query-pci</c>; empty on the microVM, which has
    /// no PCI.</summary>
    IReadOnlyList<PciFunctionInfo> PciFunctions { get; }
}

/// <summary>A snapshot's status as upstream's query-migrate names it ("none", "active", "completed", "failed"),
/// with the reason of a failure.</summary>
public sealed record SnapshotStatus(string Status, string? Error);
