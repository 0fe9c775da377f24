namespace StratoVirt.Machine;

/// <summary>What ended the VM. Each cause has one set of ending events (<see cref="MachineExit.EndingEvents"/>),
/// which QMP reports with one of QEMU's ShutdownCause names.</summary>
public enum ExitCause
{
    /// <summary>The guest powered off: ACPI S5, or a KVM shutdown system event.</summary>
    GuestPowerOff,
    /// <summary>The guest reset itself (i8042 0xFE, the ACPI reset register, a KVM reset event, on q35 a triple
    /// fault). A microVM ends on reset, and so does a q35 with -no-reboot.</summary>
    GuestReset,
    /// <summary>The guest broke: a triple fault, or a KVM crash event.</summary>
    GuestPanic,
    QmpQuit,
    /// <summary>QMP <c>system_reset</c>: a microVM (or a q35 with -no-reboot) ends on reset.</summary>
    QmpSystemReset,
    /// <summary>QMP <c>system_powerdown</c> on the microVM, which has no power button: the VMM ends the VM itself.</summary>
    QmpSystemPowerdown,
    /// <summary>SIGTERM, SIGINT or SIGHUP.</summary>
    Signal,
    /// <summary>KVM or the VMM failed (emulation failure, entry failure, an unexpected exit, a vCPU thread error).</summary>
    HostError,
}

/// <summary>Why the VM stopped: the process exit code, a line for the log, and what management clients are told.</summary>
public sealed record MachineExit(int Code, string Reason, ExitCause Cause)
{
    public bool IsError => Code != 0;

    /// <summary>The SHUTDOWN event's "guest": true when the guest itself asked for (or caused) the ending.</summary>
    public bool ByGuest => Cause is ExitCause.GuestPowerOff or ExitCause.GuestReset or ExitCause.GuestPanic;

    /// <summary>What management clients are told as the VM ends: a reset or a power-button press first where that
    /// is how it ended, then the shutdown.</summary>
    public IEnumerable<MachineEvent> EndingEvents()
    {
        switch (Cause)
        {
            case ExitCause.GuestReset or ExitCause.QmpSystemReset:
                yield return new MachineEvent.Reset(ByGuest, Cause);
                break;
            case ExitCause.QmpSystemPowerdown:
                yield return new MachineEvent.Powerdown();
                break;
        }
        yield return new MachineEvent.Shutdown(ByGuest, Cause);
    }

    public static MachineExit GuestPowerOff(string reason) => new(0, reason, ExitCause.GuestPowerOff);
    public static MachineExit GuestReset(string reason) => new(0, reason, ExitCause.GuestReset);
    public static MachineExit GuestPanic(string reason) => new(1, reason, ExitCause.GuestPanic);
    public static MachineExit HostError(string reason) => new(1, reason, ExitCause.HostError);
    public static MachineExit Signal(string name) => new(0, $"terminated by signal {name}", ExitCause.Signal);

    public static readonly MachineExit QmpQuit = new(0, "QMP quit", ExitCause.QmpQuit);
    public static readonly MachineExit QmpSystemReset = new(0, "QMP system_reset", ExitCause.QmpSystemReset);
    public static readonly MachineExit QmpSystemPowerdown =
        new(0, "QMP system_powerdown (a microVM has no power button; the VM ends)", ExitCause.QmpSystemPowerdown);
}
