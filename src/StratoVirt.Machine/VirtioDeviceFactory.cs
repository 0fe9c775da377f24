using StratoVirt.Devices.Chardev;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Balloon;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Console;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.Rng;
using StratoVirt.Virtio.Devices.Vsock;

namespace StratoVirt.Machine;

/// <summary>A machine configuration the host cannot satisfy (a missing image, a tap that cannot be opened, ...).</summary>
public sealed class MachineConfigException(string message) : Exception(message);

/// <summary>Creates the device model of each -device, opening its host side.</summary>
public static class VirtioDeviceFactory
{
    /// <summary>Creates the device; <paramref name="ramSize"/> is the guest's RAM (the balloon's upper bound) and
    /// <paramref name="chardev"/> opens a -chardev backend (the machine owns it).</summary>
    public static VirtioDevice Create(VirtioDeviceConfig config, ulong ramSize, Func<ChardevConfig, Chardev> chardev)
    {
        try
        {
            return config switch
            {
                BlockDeviceConfig b => new VirtioBlock(b.Path, b.ReadOnly, b.Direct, b.Serial) { Id = b.Id },
                RngDeviceConfig rng => new VirtioRng(rng.SourcePath) { Id = rng.Id },
                ConsoleDeviceConfig con => new VirtioConsole(chardev(con.Chardev)) { Id = con.Id },
                BalloonDeviceConfig b => new VirtioBalloon(ramSize, b.DeflateOnOom, b.FreePageReporting) { Id = b.Id },
                VsockDeviceConfig v => new VirtioVsock(v.GuestCid, v.UdsPath ?? throw new MachineConfigException(
                    $"device '{v.Id}': this build has no vhost-vsock backend; give uds-path=<socket> for the userspace one")) { Id = v.Id },
                NetDeviceConfig net => new VirtioNet(net.Fd is { } fd ? Tap.Adopt(fd) : Tap.Open(net.IfName!), net.Mac) { Id = net.Id },
                _ => throw new MachineConfigException($"device '{config.Id}': {config.GetType().Name} is not available in this build"),
            };
        }
        catch (Exception e) when (e is SysException or TapException or ChardevException or ArgumentException)
        {
            throw new MachineConfigException($"device '{config.Id}': {e.Message}");
        }
    }
}
