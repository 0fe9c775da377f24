namespace StratoVirt.Machine;

/// <summary>
/// Something that happened to the machine that its management clients are told about. The machine raises these;
/// QMP turns them into its JSON events. Raised on any thread.
/// </summary>
public abstract record MachineEvent
{
    /// <summary>The VM ends. <paramref name="Guest"/>: the guest itself asked for (or caused) it; <paramref name="Cause"/>
    /// says why.</summary>
    public sealed record Shutdown(bool Guest, ExitCause Cause) : MachineEvent;

    /// <summary>The VM was reset: on q35 once the reset is done and the guest boots again; on a microVM just before
    /// it ends.</summary>
    public sealed record Reset(bool Guest, ExitCause Cause) : MachineEvent;

    /// <summary>The power button was pressed (system_powerdown).</summary>
    public sealed record Powerdown : MachineEvent;

    /// <summary>The vCPUs were paused.</summary>
    public sealed record Stopped : MachineEvent;

    /// <summary>The vCPUs run again.</summary>
    public sealed record Resumed : MachineEvent;

    /// <summary>A device was unplugged and is gone from the guest. <paramref name="Path"/>: its QOM path, where the
    /// machine type reports one (q35: /machine/peripheral/&lt;id&gt;); null: the id (upstream's microVM).</summary>
    public sealed record DeviceDeleted(string Id, string? Path = null) : MachineEvent;

    /// <summary>The guest's memory as the balloon leaves it changed.</summary>
    public sealed record BalloonChanged(ulong ActualBytes) : MachineEvent;

    /// <summary>A drive's image failed a guest request (the guest got an I/O error; the VM goes on).
    /// <paramref name="Reason"/> is the host's error text; <paramref name="NoSpace"/>: it was ENOSPC.</summary>
    public sealed record BlockIoError(string Device, bool Write, bool NoSpace, string Reason) : MachineEvent;

    /// <summary>A vhost-user device's backend process closed its socket: the device needs a reset (the guest was told
    /// with a configuration interrupt); the VM goes on.</summary>
    public sealed record BackendDisconnected(string Device, string Chardev, string Socket) : MachineEvent;
}
