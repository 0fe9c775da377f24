namespace StratoVirt.Machine;

/// <summary>What ended the VM. Each cause maps to one QEMU ShutdownCause and one set of QMP events
/// (<see cref="MachineExit"/>).</summary>
public enum ExitCause
{
    /// <summary>The guest powered off: ACPI S5, or a KVM shutdown system event.</summary>
    GuestPowerOff,
    /// <summary>The guest reset itself (i8042 0xFE, the ACPI reset register, a KVM reset event); a microVM ends on reset.</summary>
    GuestReset,
    /// <summary>The guest broke: a triple fault, or a KVM crash event.</summary>
    GuestPanic,
    QmpQuit,
    /// <summary>QMP <c>system_reset</c>: a microVM ends on reset.</summary>
    QmpSystemReset,
    /// <summary>QMP <c>system_powerdown</c>: the microVM has no power button, so the VMM ends the VM itself.</summary>
    QmpSystemPowerdown,
    /// <summary>SIGTERM, SIGINT or SIGHUP.</summary>
    Signal,
    /// <summary>KVM or the VMM failed (emulation failure, entry failure, an unexpected exit, a vCPU thread error).</summary>
    HostError,
}

/// <summary>Why the VM stopped: the process exit code, a line for the log, and what QMP clients are told.</summary>
public sealed record MachineExit(int Code, string Reason, ExitCause Cause)
{
    public bool IsError => Code != 0;

    /// <summary>The SHUTDOWN event's "guest": true when the guest itself asked for (or caused) the ending.</summary>
    public bool ByGuest => Cause is ExitCause.GuestPowerOff or ExitCause.GuestReset or ExitCause.GuestPanic;

    /// <summary>The SHUTDOWN (and RESET) event's "reason", one of QEMU's ShutdownCause names that clients parse.
    /// system_powerdown has no cause of its own there: it ends the VM from the host, as quit does.</summary>
    public string QmpReason => Cause switch
    {
        ExitCause.GuestPowerOff => "guest-shutdown",
        ExitCause.GuestReset => "guest-reset",
        ExitCause.GuestPanic => "guest-panic",
        ExitCause.QmpQuit or ExitCause.QmpSystemPowerdown => "host-qmp-quit",
        ExitCause.QmpSystemReset => "host-qmp-system-reset",
        ExitCause.Signal => "host-signal",
        _ => "host-error",
    };

    /// <summary>The event sent just before SHUTDOWN: RESET for resets, POWERDOWN for system_powerdown, else null.</summary>
    public string? PrecedingEvent => Cause switch
    {
        ExitCause.GuestReset or ExitCause.QmpSystemReset => "RESET",
        ExitCause.QmpSystemPowerdown => "POWERDOWN",
        _ => null,
    };

    public static MachineExit GuestPowerOff(string reason) => new(0, reason, ExitCause.GuestPowerOff);
    public static MachineExit GuestReset(string reason) => new(0, reason, ExitCause.GuestReset);
    public static MachineExit GuestPanic(string reason) => new(1, reason, ExitCause.GuestPanic);
    public static MachineExit HostError(string reason) => new(1, reason, ExitCause.HostError);
    public static MachineExit Signal(string name) => new(0, $"terminated by signal {name}", ExitCause.Signal);

    public static readonly MachineExit QmpQuit = new(0, "QMP quit", ExitCause.QmpQuit);
    public static readonly MachineExit QmpSystemReset = new(0, "QMP system_reset (a microVM ends on reset)", ExitCause.QmpSystemReset);
    public static readonly MachineExit QmpSystemPowerdown =
        new(0, "QMP system_powerdown (a microVM has no power button; the VM ends)", ExitCause.QmpSystemPowerdown);
}
