using System.Globalization;
using System.Text.Json;
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
        _commands["blockdev-add"] = Args(QmpHotplugArguments.BlockdevAdd, (a, _) => Run(() => hotplug.BlockdevAdd(Blockdev(a))));
        _commands["blockdev-del"] = Args(QmpHotplugArguments.NodeName, (a, _) => Run(() => hotplug.BlockdevDel(a.String("node-name"))));
        _commands["netdev_add"] = Args(QmpHotplugArguments.NetdevAdd, (a, _) => Run(() => hotplug.NetdevAdd(Netdev(a))));
        _commands["netdev_del"] = Args(QmpHotplugArguments.Id, (a, _) => Run(() => hotplug.NetdevDel(a.String("id"))));
        _commands["device_add"] = Args(QmpHotplugArguments.DeviceAdd, (a, _) => Run(() => hotplug.DeviceAdd(Device(a))));
        _commands["device_del"] = Args(QmpHotplugArguments.Id, (a, _) => Run(() => hotplug.DeviceDel(a.String("id"))));
        // Elsewhere (the microVM) both keep upstream's microVM refusal from QmpCatalog.
        if (hotplug is not IChardevHotplug chardevs) return;
        _commands["chardev-add"] = Args(QmpHotplugArguments.ChardevAdd, (a, _) => Run(() => chardevs.ChardevAdd(Chardev(a))));
        _commands["chardev-remove"] = Args(QmpHotplugArguments.Id, (a, _) => Run(() => chardevs.ChardevRemove(a.String("id"))));
    }

    /// <summary>chardev-add as upstream's standard VM takes it: a unix socket the VMM connects to as a client, with
    /// upstream's texts for what it refuses.</summary>
    private static ChardevSpec Chardev(QmpArgs a)
    {
        string id = a.String("id");
        var backend = a.Object("backend");
        var data = backend.Object("data");
        var addr = data.Object("addr");
        string type = backend.String("type");
        if (id.Length == 0) throw new HotplugException("chardev-add: id is empty");
        if (type != "socket") throw new HotplugException($"Invalid parameter 'backend' for '{type}'");
        if (data.Boolean("server")) throw new HotplugException("Invalid parameter 'backend' for 'server'");
        if (addr.String("type") != "unix") throw new HotplugException("Invalid parameter 'backend' for 'addr'");
        return new ChardevSpec(id, addr.Object("data").String("path"));
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

    private static BlockdevSpec Blockdev(QmpArgs a)
    {
        var fileArgs = a.Object("file");
        string node = a.String("node-name"), file = fileArgs.String("filename"), fileDriver = fileArgs.String("driver");
        string? driver = a.OptionalString("driver"), aio = fileArgs.OptionalString("aio"), media = a.OptionalString("media");
        if (node.Length == 0) throw new HotplugException("blockdev-add: node-name is empty");
        if (driver is "qcow2") throw new HotplugException($"blockdev-add '{node}': qcow2 is not supported (raw only)");
        if (driver is not (null or "raw"))
            throw new HotplugException($"blockdev-add '{node}': driver '{driver}' is not supported (raw only)");
        if (fileDriver is not ("file" or "host_device"))
            throw new HotplugException($"blockdev-add '{node}': file driver '{fileDriver}' is not supported (file or host_device)");
        if (file.Length == 0) throw new HotplugException($"blockdev-add '{node}': file.filename is empty");
        if (aio is not (null or "native" or "threads" or "io_uring" or "off"))
            throw new HotplugException($"blockdev-add '{node}': aio '{aio}' is not one of native, io_uring, threads, off");
        if (media is not (null or "disk"))
            throw new HotplugException($"blockdev-add '{node}': media '{media}' is not supported by the microvm (disk only)");
        return new BlockdevSpec(node, file, a.OptionalBoolean("read-only") ?? false,
            a.OptionalObject("cache")?.OptionalBoolean("direct") ?? true);
    }

    private NetdevSpec Netdev(QmpArgs a)
    {
        string id = a.String("id");
        string? type = a.OptionalString("type"), fd = a.OptionalString("fd"), fds = a.OptionalString("fds"),
            ifname = a.OptionalString("ifname");
        if (id.Length == 0) throw new HotplugException("netdev_add: id is empty");
        if (type is not (null or "tap"))
            throw new HotplugException($"netdev_add '{id}': type '{type}' is not supported (tap only)");
        if (a.OptionalBoolean("vhost") == true || a.OptionalString("vhostfd") is not null || a.OptionalString("vhostfds") is not null)
            throw new HotplugException($"netdev_add '{id}': vhost-net is not supported by this build");
        if (a.OptionalInt32("queues") is > 1) throw new HotplugException($"netdev_add '{id}': multiqueue is not supported");
        foreach (string? script in new[] { a.OptionalString("script"), a.OptionalString("downscript") })
            if (script is not (null or "" or "no"))
                throw new HotplugException($"netdev_add '{id}': script '{script}' is not supported (use no)");
        if (fd is not null && fds is not null) throw new HotplugException($"netdev_add '{id}': give fd or fds, not both");
        string? fdText = fds ?? fd;
        if (fdText is null == ifname is null)
            throw new HotplugException($"netdev_add '{id}': give exactly one of ifname and fd/fds");
        if (fdText is null) return new NetdevSpec(id, ifname, null, null);
        if (fdText.Contains(':')) throw new HotplugException($"netdev_add '{id}': multiqueue is not supported (one fd only)");
        if (_fds.TryTake(fdText, out var owned)) return new NetdevSpec(id, null, null, owned);
        if (!int.TryParse(fdText, NumberStyles.None, CultureInfo.InvariantCulture, out int number))
            throw new HotplugException($"netdev_add '{id}': fd '{fdText}' is neither a name given with getfd nor a descriptor number");
        return new NetdevSpec(id, null, number, null);
    }

    private static DeviceAddSpec Device(QmpArgs a)
    {
        string id = a.String("id"), driver = a.String("driver");
        string? chardev = a.OptionalString("chardev");
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
            HotplugKind.Block => a.OptionalString("drive") ?? id,
            HotplugKind.Net => a.OptionalString("netdev") ?? chardev ?? id,
            _ => chardev ?? throw new HotplugException($"device_add '{id}': {driver} needs chardev (the id of a chardev-add)"),
        };
        int? slot = null;
        if (a.OptionalString("addr") is { } addr)
        {
            bool hex = addr.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
            if (!int.TryParse(hex ? addr[2..] : addr, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None,
                    CultureInfo.InvariantCulture, out int n))
                throw new HotplugException($"Invalid addr '{addr}' for device {id}");
            slot = n;
        }
        else if (a.OptionalInt32("lun") is { } lun)
        {
            if (lun < 0) throw new HotplugException($"Invalid lun {lun} for device {id}");
            slot = lun + 1;
        }
        byte[]? mac = null;
        if (kind == HotplugKind.Net && a.OptionalString("mac") is { } text)
        {
            try { mac = VirtioNet.ParseMac(text); }
            catch (ArgumentException e) { throw new HotplugException($"device_add '{id}': {e.Message}"); }
        }
        string? serial = a.OptionalString("serial");
        if (kind == HotplugKind.Block)
        {
            try { VirtioBlock.CheckSerial(serial); }
            catch (ArgumentException e) { throw new HotplugException($"device_add '{id}': {e.Message}"); }
        }
        var spec = new DeviceAddSpec(id, kind, backend, slot, mac, kind == HotplugKind.Block ? serial : null)
        {
            Driver = driver,
            Bus = a.OptionalString("bus"),
        };
        return kind == HotplugKind.VhostUserBlock ? WithQueues(spec, a) : spec;
    }

    /// <summary>num-queues (1 to 16, default 1) and queue-size (a power of two from 2 to 1024, default 128), as the
    /// command line's vhost-user-blk takes them.</summary>
    private static DeviceAddSpec WithQueues(DeviceAddSpec spec, QmpArgs a)
    {
        int queues = a.OptionalUInt16("num-queues") ?? 1;
        if (queues is < 1 or > VhostUserBlockConfig.MaxQueues)
            throw new HotplugException($"device_add '{spec.Id}': num-queues {queues} is not from 1 to {VhostUserBlockConfig.MaxQueues}");
        int size = a.OptionalUInt16("queue-size") ?? VhostUserBlockConfig.DefaultQueueSize;
        if (!VhostUserBackend.ValidQueueSize(size))
            throw new HotplugException($"device_add '{spec.Id}': queue-size {size} is not a power of two from 2 to 1024");
        return spec with { Queues = queues, QueueSize = (ushort)size };
    }
}
