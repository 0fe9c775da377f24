namespace StratoVirt.Machine;

/// <summary>Why the VM stopped, and the process exit code that goes with it.</summary>
public sealed record MachineExit(int Code, string Reason)
{
    public bool IsError => Code != 0;

    public static MachineExit PowerOff(string reason) => new(0, reason);
    public static MachineExit Failure(string reason) => new(1, reason);
}
