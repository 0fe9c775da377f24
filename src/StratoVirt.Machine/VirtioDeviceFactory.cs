using StratoVirt.Devices.Chardev;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Machine;

/// <summary>A machine configuration the host cannot satisfy (a missing image, a tap that cannot be opened, ...).</summary>
public sealed class MachineConfigException(string message) : VmmException(message);

/// <summary>Creates the device model of each -device through its registered type, opening its host side.</summary>
public static class VirtioDeviceFactory
{
    /// <summary>Creates the device; a host that cannot provide its backend is a MachineConfigException naming it.</summary>
    public static VirtioDevice Create(VirtioDeviceConfig config, VirtioDeviceResources machine)
    {
        try
        {
            return config.Create(machine);
        }
        catch (Exception e) when (e is SysException or TapException or ChardevException or ArgumentException or VhostUserException)
        {
            throw new MachineConfigException($"device '{config.Id}': {e.Message}");
        }
    }
}
