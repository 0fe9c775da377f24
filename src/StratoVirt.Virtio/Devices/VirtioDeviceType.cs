using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices;

/// <summary>Where a device goes among the microVM's virtio-mmio slots: block devices first (so that the first
/// drive is /dev/vda), then net, then the rest. The replaceable hotplug slots are block and net ones.</summary>
public enum VirtioSlotClass { Block, Net, Other }

/// <summary>
/// One -device driver name of a device type, the key=value parameters it takes besides driver, id, bus and addr,
/// and its parser: the option (with the backends it names, through the context) to the device's configuration,
/// or null for a driver that makes no device of its own (virtio-serial-device). Errors are UsageExceptions.
/// </summary>
public sealed record VirtioDriver(string Name, IReadOnlyList<string> Parameters,
    Func<OptionValue, IDeviceOptionContext, VirtioDeviceConfig?> Parse);

/// <summary>
/// A host backend option a device type consumes: -drive, -netdev, or an -object type (rng-random). Each is parsed
/// into a backend configuration stored under its id until a -device names it. For -drive and -netdev
/// <see cref="Parameters"/> are all the option's keys (id included) and <see cref="DefaultKey"/> names an item
/// given without one; an -object type lists only its keys besides type and id.
/// </summary>
public sealed record VirtioBackendOption(string Option, string? ObjectType)
{
    public string? DefaultKey { get; init; }
    public required IReadOnlyList<string> Parameters { get; init; }

    /// <summary>The option's parsed value and its id to the backend's configuration.</summary>
    public required Func<OptionValue, string, object> Parse { get; init; }

    /// <summary>What messages and -device references call it: "-drive", "-object rng-random".</summary>
    public string Name => ObjectType is null ? Option : $"{Option} {ObjectType}";
}

/// <summary>
/// A virtio device type as the command line, the slot order, hotplug and -help know it. Each device folder
/// declares one (in its configuration file) and <see cref="VirtioDeviceRegistry"/> lists it once.
/// </summary>
public sealed record VirtioDeviceType(string Name, VirtioSlotClass Slot)
{
    public required IReadOnlyList<VirtioDriver> Drivers { get; init; }

    public IReadOnlyList<VirtioBackendOption> Backends { get; init; } = [];

    /// <summary>What a QMP device_add driver contains to name this type ("blk" in virtio-blk-mmio, as upstream's
    /// microVM matches it); null: the type cannot be hotplugged.</summary>
    public string? HotplugMatch { get; init; }

    /// <summary>The -help lines of its options.</summary>
    public required IReadOnlyList<string> Usage { get; init; }
}
