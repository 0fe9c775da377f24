using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using StratoVirt.Machine;
using StratoVirt.Sys;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.VhostUserBlock;

namespace StratoVirt.Qmp;

/// <summary>blockdev-add/del, netdev_add/del and device_add/del, and chardev-add/remove where the machine takes
/// vhost-user devices: arguments checked here, the rest done by the machine's <see cref="IHotplug"/> and
/// <see cref="IChardevHotplug"/>.</summary>
internal sealed partial class QmpDispatcher
{
    partial void AddHotplugCommands()
    {
        if (_hotplug is not { } hotplug) return;
        var json = QmpHotplugJsonContext.Default;
        _commands["blockdev-add"] = Args(json.BlockdevAddArguments, (a, _) => Run(() => hotplug.BlockdevAdd(Blockdev(a))));
        _commands["blockdev-del"] = Args(json.NodeNameArguments, (a, _) => Run(() => hotplug.BlockdevDel(a.NodeName)));
        _commands["netdev_add"] = Args(json.NetdevAddArguments, (a, _) => Run(() => hotplug.NetdevAdd(Netdev(a))));
        _commands["netdev_del"] = Args(json.IdArguments, (a, _) => Run(() => hotplug.NetdevDel(a.Id)));
        _commands["device_add"] = Args(json.DeviceAddArguments, (a, _) => Run(() => hotplug.DeviceAdd(Device(a))));
        _commands["device_del"] = Args(json.IdArguments, (a, _) => Run(() => hotplug.DeviceDel(a.Id)));
        // Elsewhere (the microVM) both keep upstream's microVM refusal from QmpCatalog.
        if (hotplug is not IChardevHotplug chardevs) return;
        _commands["chardev-add"] = Args(json.ChardevAddArguments, (a, _) => Run(() => chardevs.ChardevAdd(Chardev(a))));
        _commands["chardev-remove"] = Args(json.IdArguments, (a, _) => Run(() => chardevs.ChardevRemove(a.Id)));
    }

    /// <summary>chardev-add as upstream's standard VM takes it: a unix socket the VMM connects to as a client, with
    /// upstream's texts for what it refuses.</summary>
    private static ChardevSpec Chardev(ChardevAddArguments a)
    {
        if (a.Id.Length == 0) throw new HotplugException("chardev-add: id is empty");
        if (a.Backend.Type != "socket") throw new HotplugException($"Invalid parameter 'backend' for '{a.Backend.Type}'");
        if (a.Backend.Data.Server) throw new HotplugException("Invalid parameter 'backend' for 'server'");
        if (a.Backend.Data.Addr.Type != "unix") throw new HotplugException("Invalid parameter 'backend' for 'addr'");
        return new ChardevSpec(a.Id, a.Backend.Data.Addr.Data.Path);
    }

    /// <summary>Runs a hotplug step; a refusal becomes a GenericError.</summary>
    private static QmpReply Run(Action step)
    {
        try
        {
            step();
        }
        catch (HotplugException e)
        {
            return QmpReply.Fail(e.Message);
        }
        return Ok();
    }

    private static BlockdevSpec Blockdev(BlockdevAddArguments a)
    {
        if (a.NodeName.Length == 0) throw new HotplugException("blockdev-add: node-name is empty");
        if (a.Driver is "qcow2") throw new HotplugException($"blockdev-add '{a.NodeName}': qcow2 is not supported (raw only)");
        if (a.Driver is not (null or "raw"))
            throw new HotplugException($"blockdev-add '{a.NodeName}': driver '{a.Driver}' is not supported (raw only)");
        if (a.File.Driver is not ("file" or "host_device"))
            throw new HotplugException($"blockdev-add '{a.NodeName}': file driver '{a.File.Driver}' is not supported (file or host_device)");
        if (a.File.Filename.Length == 0) throw new HotplugException($"blockdev-add '{a.NodeName}': file.filename is empty");
        if (a.File.Aio is not (null or "native" or "threads" or "io_uring" or "off"))
            throw new HotplugException($"blockdev-add '{a.NodeName}': aio '{a.File.Aio}' is not one of native, io_uring, threads, off");
        if (a.Media is not (null or "disk"))
            throw new HotplugException($"blockdev-add '{a.NodeName}': media '{a.Media}' is not supported by the microvm (disk only)");
        return new BlockdevSpec(a.NodeName, a.File.Filename, a.ReadOnly ?? false, a.Cache?.Direct ?? true);
    }

    private NetdevSpec Netdev(NetdevAddArguments a)
    {
        string id = a.Id;
        if (id.Length == 0) throw new HotplugException("netdev_add: id is empty");
        if (a.Type is not (null or "tap"))
            throw new HotplugException($"netdev_add '{id}': type '{a.Type}' is not supported (tap only)");
        if (a.Vhost == true || a.Vhostfd is not null || a.Vhostfds is not null)
            throw new HotplugException($"netdev_add '{id}': vhost-net is not supported by this build");
        if (a.Queues is > 1) throw new HotplugException($"netdev_add '{id}': multiqueue is not supported");
        foreach (string? script in new[] { a.Script, a.Downscript })
            if (script is not (null or "" or "no"))
                throw new HotplugException($"netdev_add '{id}': script '{script}' is not supported (use no)");
        if (a.Fd is not null && a.Fds is not null) throw new HotplugException($"netdev_add '{id}': give fd or fds, not both");
        string? fdText = a.Fds ?? a.Fd;
        if (fdText is null == a.Ifname is null)
            throw new HotplugException($"netdev_add '{id}': give exactly one of ifname and fd/fds");
        if (fdText is null) return new NetdevSpec(id, a.Ifname, null, null);
        if (fdText.Contains(':')) throw new HotplugException($"netdev_add '{id}': multiqueue is not supported (one fd only)");
        if (_fds.TryTake(fdText, out var owned)) return new NetdevSpec(id, null, null, owned);
        if (!int.TryParse(fdText, NumberStyles.None, CultureInfo.InvariantCulture, out int fd))
            throw new HotplugException($"netdev_add '{id}': fd '{fdText}' is neither a name given with getfd nor a descriptor number");
        return new NetdevSpec(id, null, fd, null);
    }

    private static DeviceAddSpec Device(DeviceAddArguments a)
    {
        string id = a.Id, driver = a.Driver;
        var registry = VirtioDeviceRegistry.Default;
        HotplugKind kind = driver == IChardevHotplug.VhostUserBlockDriver ? HotplugKind.VhostUserBlock : registry.Hotpluggable(driver)?.Slot switch
        {
            VirtioSlotClass.Block => HotplugKind.Block,
            VirtioSlotClass.Net => HotplugKind.Net,
            _ => throw new HotplugException($"{driver} cannot be hotplugged (only {registry.HotpluggableNames} and {IChardevHotplug.VhostUserBlockDriver})"),
        };
        // The backend: drive/netdev as QEMU names it; upstream takes a net device's from chardev, or needs id ==
        // the backend's name. A vhost-user-blk names its chardev.
        string backend = kind switch
        {
            HotplugKind.Block => a.Drive ?? id,
            HotplugKind.Net => a.Netdev ?? a.Chardev ?? id,
            _ => a.Chardev ?? throw new HotplugException($"device_add '{id}': {driver} needs chardev (the id of a chardev-add)"),
        };
        int? slot = null;
        if (a.Addr is { } addr)
        {
            bool hex = addr.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
            if (!int.TryParse(hex ? addr[2..] : addr, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None,
                    CultureInfo.InvariantCulture, out int n))
                throw new HotplugException($"Invalid addr '{addr}' for device {id}");
            slot = n;
        }
        else if (a.Lun is { } lun)
        {
            if (lun < 0) throw new HotplugException($"Invalid lun {lun} for device {id}");
            slot = lun + 1;
        }
        byte[]? mac = null;
        if (kind == HotplugKind.Net && a.Mac is { } text)
        {
            try { mac = VirtioNet.ParseMac(text); }
            catch (ArgumentException e) { throw new HotplugException($"device_add '{id}': {e.Message}"); }
        }
        if (kind == HotplugKind.Block)
        {
            try { VirtioBlock.CheckSerial(a.Serial); }
            catch (ArgumentException e) { throw new HotplugException($"device_add '{id}': {e.Message}"); }
        }
        var spec = new DeviceAddSpec(id, kind, backend, slot, mac, kind == HotplugKind.Block ? a.Serial : null) { Driver = driver, Bus = a.Bus };
        return kind == HotplugKind.VhostUserBlock ? WithQueues(spec, a) : spec;
    }

    /// <summary>num-queues (1 to 16, default 1) and queue-size (a power of two from 2 to 1024, default 128), as the
    /// command line's vhost-user-blk takes them.</summary>
    private static DeviceAddSpec WithQueues(DeviceAddSpec spec, DeviceAddArguments a)
    {
        int queues = a.NumQueues ?? 1;
        if (queues is < 1 or > VhostUserBlockConfig.MaxQueues)
            throw new HotplugException($"device_add '{spec.Id}': num-queues {queues} is not from 1 to {VhostUserBlockConfig.MaxQueues}");
        int size = a.QueueSize ?? VhostUserBlockConfig.DefaultQueueSize;
        if (!VhostUserBackend.ValidQueueSize(size))
            throw new HotplugException($"device_add '{spec.Id}': queue-size {size} is not a power of two from 2 to 1024");
        return spec with { Queues = queues, QueueSize = (ushort)size };
    }
}
