using StratoVirt.Sys;
using StratoVirt.Virtio.Devices.VhostUserBlock;

namespace StratoVirt.Machine;

/// <summary>
/// Hotplug as a machine type offers it: backends stored by name (blockdev-add, netdev_add) and the slots they are
/// plugged into (device_add) and out of (device_del) — the microVM's replaceable virtio-mmio slots, q35's PCI
/// Express root ports. Called on the main loop; each method throws <see cref="HotplugException"/> with a one-line reason when it refuses.
/// </summary>
public interface IHotplug
{
    /// <summary>Opens and locks the image now and stores it under <see cref="BlockdevSpec.NodeName"/>.</summary>
    void BlockdevAdd(BlockdevSpec spec);

    /// <summary>Closes a stored image that no device uses.</summary>
    void BlockdevDel(string nodeName);

    /// <summary>Opens the tap now and stores it under <see cref="NetdevSpec.Id"/>.</summary>
    void NetdevAdd(NetdevSpec spec);

    /// <summary>Closes a stored tap that no device uses.</summary>
    void NetdevDel(string id);

    /// <summary>Plugs a stored backend into a replaceable slot of its kind.</summary>
    void DeviceAdd(DeviceAddSpec spec);

    /// <summary>Empties the device's slot and closes its backend: at once, raising DeviceDeleted before returning
    /// (microVM), or once the guest released it (q35: the attention button is pressed; DeviceDeleted follows when
    /// the guest powers the slot off).</summary>
    void DeviceDel(string id);
}

/// <summary>
/// chardev-add and chardev-remove, on a machine that hot-plugs vhost-user devices (q35): unix socket chardevs the VMM
/// connects to as a client, stored by id until chardev-remove; device_add names one as its chardev. Called on the
/// main loop; each method throws <see cref="HotplugException"/> with a one-line reason when it refuses.
/// </summary>
public interface IChardevHotplug
{
    /// <summary>The driver that takes a stored chardev: QMP's device_add maps it to
    /// <see cref="HotplugKind.VhostUserBlock"/>.</summary>
    const string VhostUserBlockDriver = "vhost-user-blk-pci";

    /// <summary>Stores the chardev; nothing connects until a device_add names it.</summary>
    void ChardevAdd(ChardevSpec spec);

    /// <summary>Forgets a stored chardev that no device uses.</summary>
    void ChardevRemove(string id);
}

/// <summary>chardev-add's unix socket client: the backend's socket path.</summary>
public sealed record ChardevSpec(string Id, string Path);

/// <summary>A hotplug request the machine refuses (unknown name, slot in use, an image that cannot be opened).</summary>
public sealed class HotplugException(string message) : VmmException(message);

/// <summary>What device_add plugs: a virtio-blk on a stored image, a virtio-net on a stored tap (the microVM's two
/// kinds of replaceable slot, and q35's), or a vhost-user-blk on a stored chardev (q35 only).</summary>
public enum HotplugKind { Block, Net, VhostUserBlock }

/// <summary>A raw image to open for blockdev-add.</summary>
public sealed record BlockdevSpec(string NodeName, string Filename, bool ReadOnly, bool Direct);

/// <summary>
/// A tap for netdev_add: by interface name, by an fd number the VMM inherited (left open if it is not a tap), or
/// an fd handed over by getfd (<see cref="OwnedFd"/>, which the callee owns from then on, and closes if it
/// refuses it).
/// </summary>
public sealed record NetdevSpec(string Id, string? IfName, int? InheritedFd, FileDescriptor? OwnedFd);

/// <summary>device_add, resolved: the backend's name (the drive, netdev or chardev), the slot (the microVM's: the index within the kind; q35's: the
/// PCI slot on <see cref="Bus"/>; null: the first free one), and the MAC and serial to give the device.</summary>
public sealed record DeviceAddSpec(string Id, HotplugKind Kind, string Backend, int? Slot, byte[]? Mac, string? Serial)
{
    /// <summary>The driver as the client named it (virtio-blk-mmio, virtio-net-pci, ...).</summary>
    public string Driver { get; init; } = "";

    /// <summary>bus=: the PCI bus (a root port's id) on q35; the microVM ignores it.</summary>
    public string? Bus { get; init; }

    /// <summary>num-queues and queue-size of a vhost-user-blk (checked already).</summary>
    public int Queues { get; init; } = 1;
    public ushort QueueSize { get; init; } = VhostUserBlockConfig.DefaultQueueSize;
}
