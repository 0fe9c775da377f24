using StratoVirt.Devices.Options;

namespace StratoVirt.Virtio.Devices.Rng;

/// <summary>An -object rng-random: the host file the entropy comes from.</summary>
public sealed record RngObjectConfig(string Id, string Path);

/// <summary>-device virtio-rng-device on an -object rng-random.</summary>
public sealed record RngDeviceConfig(string Id, string SourcePath) : VirtioDeviceConfig(Id)
{
    private static readonly VirtioBackendOption RngRandom = new("-object", "rng-random")
    {
        Parameters = ["filename"],
        Parse = (v, id) => new RngObjectConfig(id, v.Get("filename") ?? "/dev/random"),
    };

    public static readonly VirtioDeviceType Type = new("virtio-rng", VirtioSlotClass.Other)
    {
        Drivers = [new("virtio-rng-device", ["rng", "max-bytes", "period"], ParseDevice)],
        Backends = [RngRandom],
        Usage = ["-object rng-random,id=<r>,filename=/dev/urandom  -device virtio-rng-device,rng=<r>"],
    };

    public override VirtioDeviceType DeviceType => Type;

    protected override VirtioDevice CreateDevice(VirtioDeviceResources machine) => new VirtioRng(SourcePath) { Id = Id };

    private static RngDeviceConfig ParseDevice(OptionValue v, IDeviceOptionContext context)
    {
        var source = context.Backend<RngObjectConfig>(v, "rng", RngRandom.Name);
        return new RngDeviceConfig(context.DeviceId(v), source.Path);
    }
}
