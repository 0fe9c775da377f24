using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices.Console;

/// <summary>-device virtconsole on a -chardev, behind the one -device virtio-serial-device it needs.</summary>
public sealed record ConsoleDeviceConfig(string Id, ChardevConfig Chardev) : VirtioDeviceConfig(Id)
{
    private const string SerialBus = "virtio-serial-device";

    public static readonly VirtioDeviceType Type = new("virtio-console", VirtioSlotClass.Other)
    {
        Drivers = [new(SerialBus, ["max_ports"], ParseSerialBus), new("virtconsole", ["chardev", "nr"], ParseConsole)],
        Usage = ["-device virtio-serial-device  -device virtconsole,chardev=<c>,id=<id>"],
    };

    public override VirtioDeviceType DeviceType => Type;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine) =>
        new VirtioConsole(machine.OpenChardev(Chardev)) { Id = Id };

    /// <summary>The virtio-serial bus is the console device itself: it only has to come first, once.</summary>
    private static VirtioDeviceConfig? ParseSerialBus(OptionValue v, IDeviceOptionContext context) =>
        context.HasDriver(SerialBus) ? throw new UsageException("option -device: only one virtio-serial-device is supported") : null;

    private static ConsoleDeviceConfig ParseConsole(OptionValue v, IDeviceOptionContext context)
    {
        if (!context.HasDriver(SerialBus)) throw new UsageException("option -device: virtconsole needs a virtio-serial-device before it");
        if (context.HasDevice<ConsoleDeviceConfig>())
            throw new UsageException("option -device: the microvm's virtio-serial has one port; only one virtconsole is supported");
        if (v.GetInt("nr", 0, 0) is null && v.Has("nr")) throw new UsageException("option -device: virtconsole nr must be 0");
        var chardev = context.Backend<ChardevConfig>(v, "chardev", "-chardev");
        return new ConsoleDeviceConfig(context.DeviceId(v), chardev);
    }
}
