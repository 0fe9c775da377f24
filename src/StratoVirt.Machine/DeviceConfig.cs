namespace StratoVirt.Machine;

/// <summary>A virtio-mmio device from -device (with what its -drive/-netdev/-chardev/-object named).</summary>
public abstract record VirtioDeviceConfig(string Id)
{
    /// <summary>The -object iothread whose loop runs the device's queues; null: the main loop.</summary>
    public string? IoThread { get; init; }
}

public sealed record BlockDeviceConfig(string Id, string Path, bool ReadOnly, bool Direct, string? Serial)
    : VirtioDeviceConfig(Id);

/// <summary>A tap netdev: by interface name, or an fd the caller passed in.</summary>
public sealed record NetDeviceConfig(string Id, string? IfName, int? Fd, byte[]? Mac) : VirtioDeviceConfig(Id);

public sealed record ConsoleDeviceConfig(string Id, ChardevConfig Chardev) : VirtioDeviceConfig(Id);

public sealed record RngDeviceConfig(string Id, string SourcePath) : VirtioDeviceConfig(Id);

public sealed record BalloonDeviceConfig(string Id, bool DeflateOnOom, bool FreePageReporting) : VirtioDeviceConfig(Id);

public sealed record VsockDeviceConfig(string Id, ulong GuestCid, string? UdsPath) : VirtioDeviceConfig(Id);

/// <summary>A -chardev backend.</summary>
public abstract record ChardevConfig(string Id)
{
    public sealed record Stdio(string Id) : ChardevConfig(Id);
    public sealed record File(string Id, string Path) : ChardevConfig(Id);
    public sealed record Pty(string Id) : ChardevConfig(Id);
    public sealed record UnixSocket(string Id, string Path, bool Server, bool NoWait) : ChardevConfig(Id);
}
