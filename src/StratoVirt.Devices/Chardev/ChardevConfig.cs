namespace StratoVirt.Devices.Chardev;

/// <summary>A -chardev backend.</summary>
public abstract record ChardevConfig(string Id)
{
    public sealed record Stdio(string Id) : ChardevConfig(Id);
    public sealed record File(string Id, string Path) : ChardevConfig(Id);
    public sealed record Pty(string Id) : ChardevConfig(Id);
    public sealed record UnixSocket(string Id, string Path, bool Server, bool NoWait) : ChardevConfig(Id);
}
