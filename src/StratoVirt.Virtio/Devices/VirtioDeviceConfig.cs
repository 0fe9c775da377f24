using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Options;
using StratoVirt.Devices.Pci;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Devices;

/// <summary>A virtio device from -device (with what its -drive/-netdev/-chardev/-object named).</summary>
public abstract record VirtioDeviceConfig(string Id)
{
    /// <summary>The -object iothread whose loop runs the device's queues; null: the main loop.</summary>
    public string? IoThread { get; init; }

    /// <summary>Where a virtio-*-pci device goes on the PCI bus; null: a virtio-mmio device (-device virtio-*-device).</summary>
    public PciPlacement? Pci { get; init; }

    /// <summary>-device bootindex=: where firmware puts the device in its boot order (lowest first); null: none.</summary>
    public int? BootIndex { get; init; }

    /// <summary>The registered type this configuration belongs to.</summary>
    public abstract VirtioDeviceType DeviceType { get; }

    /// <summary>Where the device goes among the slots; its type's class unless the configuration says otherwise.</summary>
    public virtual VirtioSlotClass Slot => DeviceType.Slot;

    /// <summary>Creates the device model, opening its host side (image, tap, socket, ...), to run on
    /// <paramref name="machine"/>'s loop. Host errors are SysException, TapException, ChardevException or
    /// ArgumentException, with messages that do not repeat the device id.</summary>
    public VirtioDevice Create(VirtioDeviceResources machine)
    {
        var device = CreateDevice(machine);
        device.Loop = machine.Loop;
        return device;
    }

    protected abstract VirtioDevice CreateDevice(VirtioDeviceResources machine);
}

/// <summary>What the machine gives a device it creates: guest RAM's size (the balloon's bound), a way to open the
/// -chardev backends it owns, and the event loop (main or iothread) that will run the device.</summary>
public sealed record VirtioDeviceResources(ulong RamSize, Func<ChardevConfig, Chardev> OpenChardev, EventLoop Loop)
{
    /// <summary>Whether guest RAM is shared memory with a file behind it, which a backend process can map.</summary>
    public bool SharedMemory { get; init; }

    /// <summary>A device whose queues another process serves needs RAM that process can map.</summary>
    public static void RequireSharedMemory(VirtioDeviceResources machine, string driver)
    {
        if (!machine.SharedMemory)
            throw new ArgumentException($"{driver} needs guest RAM shared with its backend: add mem-share=on to -machine " +
                "(or use a memory backend with share=on)");
    }
}

/// <summary>What a -device parser may ask of the command line.</summary>
public interface IDeviceOptionContext
{
    /// <summary>
    /// The backend <paramref name="device"/>'s <paramref name="key"/>= names among those of
    /// <paramref name="option"/> (a <see cref="VirtioBackendOption.Name"/>, or -chardev), which no other device may
    /// then use. A missing key, an unknown id or a second user is a UsageException.
    /// </summary>
    T Backend<T>(OptionValue device, string key, string option) where T : class;

    /// <summary>The device's id=, or one made up from its driver and position.</summary>
    string DeviceId(OptionValue device);

    /// <summary>The devices parsed so far.</summary>
    IReadOnlyList<VirtioDeviceConfig> Devices { get; }

    /// <summary>Whether an earlier -device used <paramref name="driver"/>.</summary>
    bool HasDriver(string driver);
}

public static class DeviceOptionContextExtensions
{
    /// <summary>Whether a device of type <typeparamref name="T"/> was parsed already.</summary>
    public static bool HasDevice<T>(this IDeviceOptionContext context) where T : VirtioDeviceConfig
    {
        foreach (var d in context.Devices)
            if (d is T) return true;
        return false;
    }
}
