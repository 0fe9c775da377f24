using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;

namespace StratoVirt.Machine;

/// <summary>A machine configuration the host cannot satisfy (a missing image, a tap that cannot be opened, ...).</summary>
public sealed class MachineConfigException(string message) : Exception(message);

/// <summary>Creates the device model of each -device, opening its host side.</summary>
public static class VirtioDeviceFactory
{
    public static VirtioDevice Create(VirtioDeviceConfig config)
    {
        try
        {
            return config switch
            {
                RngDeviceConfig rng => new VirtioRng(rng.SourcePath) { Id = rng.Id },
                _ => throw new MachineConfigException($"device '{config.Id}': {config.GetType().Name} is not available in this build"),
            };
        }
        catch (SysException e)
        {
            throw new MachineConfigException($"device '{config.Id}': {e.Message}");
        }
    }
}
