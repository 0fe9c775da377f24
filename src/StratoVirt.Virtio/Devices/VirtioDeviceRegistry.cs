using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Devices.Fs;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Devices.VhostUserBlock;
using StratoVirt.Virtio.Devices.Vsock;

namespace StratoVirt.Virtio.Devices;

/// <summary>
/// The virtio device types this build has. The command line's -device drivers and backend options, the slot
/// order, QMP hotplug's driver names and -help all read it, so a new device is its folder, one line in
/// <see cref="Default"/> and the README.
/// </summary>
public sealed class VirtioDeviceRegistry
{
    public static VirtioDeviceRegistry Default { get; } = new(
    [
        BlockDeviceConfig.Type,
        NetDeviceConfig.Type,
        ConsoleDeviceConfig.Type,
        RngDeviceConfig.Type,
        BalloonDeviceConfig.Type,
        VsockDeviceConfig.Type,
        FsDeviceConfig.Type,
        VhostUserBlockConfig.Type,
    ]);

    private readonly VirtioDeviceType[] _types;
    private readonly Dictionary<string, VirtioDriver> _drivers = new(StringComparer.Ordinal);
    private readonly List<VirtioBackendOption> _backends = [];

    /// <summary>Throws ArgumentException when two types claim one driver name or one backend option.</summary>
    private VirtioDeviceRegistry(VirtioDeviceType[] types)
    {
        _types = types;
        foreach (var type in _types)
        {
            foreach (var driver in type.Drivers)
                if (!_drivers.TryAdd(driver.Name, driver))
                    throw new ArgumentException($"-device driver '{driver.Name}' is registered twice");
            foreach (var backend in type.Backends)
            {
                var same = _backends.Find(b => b.Name == backend.Name);
                if (same is null) _backends.Add(backend);
                else if (!ReferenceEquals(same, backend)) throw new ArgumentException($"{backend.Name} is registered twice");
            }
        }
    }

    public IReadOnlyList<VirtioDeviceType> Types => _types;

    /// <summary>The backend options the types consume, each once, in the order of the types.</summary>
    public IReadOnlyList<VirtioBackendOption> Backends => _backends;

    /// <summary>This registry with one more type.</summary>
    public VirtioDeviceRegistry With(VirtioDeviceType type) => new([.. _types, type]);

    /// <summary>The -device driver of that name; null if no type has it.</summary>
    public VirtioDriver? Driver(string name) => _drivers.GetValueOrDefault(name);

    /// <summary>The type a QMP device_add driver names (see <see cref="VirtioDeviceType.HotplugMatch"/>); null
    /// if none can be hotplugged by that name.</summary>
    public VirtioDeviceType? Hotpluggable(string driver) =>
        Array.Find(_types, t => t.HotplugMatch is { } match && driver.Contains(match, StringComparison.Ordinal));

    /// <summary>"virtio-blk and virtio-net": the types hotplug takes, for messages.</summary>
    public string HotpluggableNames
    {
        get
        {
            var names = new List<string>();
            foreach (var t in _types)
                if (t.HotplugMatch is not null) names.Add(t.Name);
            return string.Join(" and ", names);
        }
    }

    /// <summary>Every type's -help lines, in registration order.</summary>
    public IEnumerable<string> Usage
    {
        get
        {
            foreach (var t in _types)
                foreach (string line in t.Usage) yield return line;
        }
    }
}
