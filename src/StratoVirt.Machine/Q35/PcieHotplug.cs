using System.Collections.Concurrent;
using StratoVirt.Devices.Pci;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;
using StratoVirt.Virtio.Devices.VhostUserBlock;
using StratoVirt.Virtio.Transport.Pci;
using StratoVirt.Virtio.VhostUser;

namespace StratoVirt.Machine;

/// <summary>
/// q35's hotplug, as upstream's standard VM: PCI Express native hotplug into pcie-root-port slots. device_add
/// builds a virtio-blk-pci (on a blockdev-add image), virtio-net-pci (on a netdev_add tap) or vhost-user-blk-pci
/// (connected to the backend on a chardev-add socket, which stays stored for chardev-remove) function, puts it at
/// 00.0 behind the root port its bus= names and tells the guest through the port (presence, link, interrupt);
/// Linux's pciehp then powers the slot on and enumerates it. device_del presses the port's attention button; when
/// the guest has released the device and powers the slot off, the port takes the function off its bus (on that
/// vCPU), and this class disposes of it on the main loop and raises DeviceDeleted with QEMU's path. Cold-plugged
/// devices behind a root port go the same way; those on pcie.0 cannot be unplugged (no slot to pull them from).
/// Called on the main loop, but for <see cref="Removed"/>.
/// </summary>
internal sealed class PcieHotplug : IHotplug, IChardevHotplug, IDisposable
{
    public const string BlockDriver = "virtio-blk-pci", NetDriver = "virtio-net-pci";
    public const string VhostUserBlockDriver = IChardevHotplug.VhostUserBlockDriver;

    private readonly VirtualMachine _vm;
    private readonly VirtioPciDevices _devices;
    private readonly Dictionary<string, (PcieRootPort Port, int Slot)> _ports = new(StringComparer.Ordinal);
    private readonly HotplugBackends _backends;
    /// <summary>The stored backend each hot-plugged device took, by device id.</summary>
    private readonly Dictionary<string, string> _takenBackends = new(StringComparer.Ordinal);
    /// <summary>The ids of cold-plugged devices the guest has released (free for device_add again).</summary>
    private readonly HashSet<string> _gone = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<PciFunction> _removed = new();
    private readonly EventFd _removedEvent = new();
    private readonly ulong _token;

    public PcieHotplug(VirtualMachine vm, VirtioPciDevices devices)
    {
        _vm = vm;
        _devices = devices;
        _backends = new HotplugBackends(name => User(name, HotplugKind.Block), name => User(name, HotplugKind.Net),
            TapFdInUse,
            name => User(name, HotplugKind.VhostUserBlock));
        _token = vm.MainLoop.Add(_removedEvent.Fd, Libc.EPOLLIN, _ => Collect());
    }

    /// <summary>The root ports by id, with their slot on pcie.0.</summary>
    public IReadOnlyDictionary<string, (PcieRootPort Port, int Slot)> Ports => _ports;

    public void AddPort(PcieRootPort port, int slot) => _ports.Add(port.Name, (port, slot));

    /// <summary>What a root port took off its bus when the guest powered its slot off: queued for the main loop
    /// (any thread; the function is off the bus already, so no vCPU reaches it any more).</summary>
    public void Removed(IReadOnlyList<PciFunction> functions)
    {
        foreach (var f in functions) _removed.Enqueue(f);
        _removedEvent.Signal();
    }

    private void Collect()
    {
        _removedEvent.Drain();
        while (_removed.TryDequeue(out var f))
        {
            string id = f.QdevId;
            if (f is VirtioPciFunction function) _devices.Release(function);
            _takenBackends.Remove(id);
            _gone.Add(id);
            Log.Info($"device '{id}' unplugged: the guest powered its slot off");
            _vm.Raise(new MachineEvent.DeviceDeleted(id, $"/machine/peripheral/{id}"));
        }
    }

    /// <summary>Whether <paramref name="id"/> is a -device the guest has not released.</summary>
    private bool ColdPlugged(string id)
    {
        if (_gone.Contains(id)) return false;
        foreach (var d in _vm.Config.Devices)
            if (d.Id == id) return true;
        return false;
    }

    /// <summary>Whether a function named <paramref name="name"/> (of that kind, when given) exists.</summary>
    private bool HasFunction(string name, HotplugKind? kind = null)
    {
        foreach (var f in _devices.Functions)
            if (f.Name == name && (kind is null || KindOf(f.Device) == kind)) return true;
        return false;
    }

    /// <summary>Whether a virtio-net function's tap has the descriptor <paramref name="fd"/>.</summary>
    private bool TapFdInUse(int fd)
    {
        foreach (var f in _devices.Functions)
            if (f.Device is VirtioNet net && net.BackendFd == fd) return true;
        return false;
    }

    /// <summary>The hot-plugged device of that kind that took the backend <paramref name="backend"/>, until the guest
    /// released it.</summary>
    private string? User(string backend, HotplugKind kind)
    {
        foreach (var (id, name) in _takenBackends)
            if (name == backend && HasFunction(id, kind))
                return id;
        return null;
    }

    private static HotplugKind? KindOf(VirtioDevice device) => device switch
    {
        VirtioBlock => HotplugKind.Block,
        VirtioNet => HotplugKind.Net,
        VhostUserBlock => HotplugKind.VhostUserBlock,
        _ => null,
    };

    public void ChardevAdd(ChardevSpec spec) => _backends.ChardevAdd(spec);

    public void ChardevRemove(string id) => _backends.ChardevRemove(id);

    public void BlockdevAdd(BlockdevSpec spec) => _backends.BlockdevAdd(spec);

    public void BlockdevDel(string nodeName) => _backends.BlockdevDel(nodeName);

    public void NetdevAdd(NetdevSpec spec) => _backends.NetdevAdd(spec);

    public void NetdevDel(string id) => _backends.NetdevDel(id);

    public void DeviceAdd(DeviceAddSpec spec)
    {
        string id = spec.Id;
        if (id.Length == 0) throw new HotplugException("device_add needs a non-empty id");
        if (_ports.ContainsKey(id) || ColdPlugged(id) || HasFunction(id))
            throw new HotplugException($"Device id '{id}' is already in use");
        string wanted = spec.Kind switch
        {
            HotplugKind.Block => BlockDriver,
            HotplugKind.Net => NetDriver,
            _ => VhostUserBlockDriver,
        };
        if (spec.Driver != wanted)
            throw new HotplugException($"device_add '{id}': {spec.Driver} cannot be hotplugged into the q35 machine " +
                $"(only {BlockDriver}, {NetDriver} and {VhostUserBlockDriver})");
        if (spec.Bus is null or PciPlacement.RootBus)
            throw new HotplugException($"device_add '{id}': pcie.0 takes no hot-plugged devices; plug into a pcie-root-port (bus=<its id>)");
        if (!_ports.TryGetValue(spec.Bus, out var entry))
            throw new HotplugException($"device_add '{id}': no such bus '{spec.Bus}' (the q35 machine's root ports: " +
                $"{(_ports.Count == 0 ? "none" : string.Join(", ", _ports.Keys))})");
        if (spec.Slot is not (null or 0))
            throw new HotplugException($"device_add '{id}': addr 0x{spec.Slot:x}: a device behind root port '{spec.Bus}' sits at slot 0 (addr 0x0)");
        var port = entry.Port;
        if (port.Occupied || port.Secondary.FirstFunction is not null)
        {
            string holder = port.Secondary.FirstFunction?.Name ?? "a device being removed";
            throw new HotplugException($"device_add '{id}': root port '{spec.Bus}' is occupied by '{holder}'");
        }

        VirtioDevice device = spec.Kind switch
        {
            HotplugKind.Block => VirtioBlock.WithImage(id, _backends.Drive(spec.Backend), spec.Serial),
            HotplugKind.Net => new VirtioNet(_backends.Netdev(spec.Backend), spec.Mac) { Id = id },
            _ => ConnectVhostUserBlock(spec),
        };
        device.Loop = _vm.MainLoop;
        VirtioPciFunction function;
        try
        {
            function = _devices.NewFunction(device, entry.Slot, multiFunction: false);
        }
        catch (SysException e)
        {
            // An image or tap stays stored (and open) for another try; a vhost-user connection is closed.
            if (device is VhostUserDevice) device.Dispose();
            throw new HotplugException($"device_add '{id}': {e.Message}");
        }
        _backends.Release(spec.Backend, spec.Kind);
        _takenBackends[id] = spec.Backend;
        _devices.Add(function);
        port.Secondary.Attach(0, 0, function);
        function.Attach();
        port.Plug();
        if (device is VirtioBlock block) _vm.WatchBlock(block);
        if (device is VhostUserDevice vhostUser) _vm.WatchVhostUser(vhostUser);
        Log.Info($"device '{id}' ({spec.Driver}) plugged into root port '{spec.Bus}'");
    }

    /// <summary>A vhost-user-blk on the stored chardev <see cref="DeviceAddSpec.Backend"/>, connected to its backend
    /// (features, queues, configuration space settled now, as at start-up).</summary>
    private VhostUserBlock ConnectVhostUserBlock(DeviceAddSpec spec)
    {
        if (!_vm.MemoryShared)
            throw new HotplugException($"device_add '{spec.Id}': {VhostUserBlockDriver} needs guest RAM shared with its backend: " +
                "start the VM with -machine q35,mem-share=on (or a memory backend with share=on)");
        string path = _backends.Chardev(spec.Backend);
        try
        {
            return new VhostUserBlock(spec.Queues, spec.QueueSize, new VhostUserBackend(spec.Backend, path)) { Id = spec.Id };
        }
        catch (VhostUserException e)
        {
            throw new HotplugException($"device_add '{spec.Id}': {e.Message}");
        }
    }

    public void DeviceDel(string id)
    {
        foreach (var (port, _) in _ports.Values)
        {
            if (!Holds(port.Secondary, id)) continue;
            try
            {
                if (!port.RequestUnplug()) Log.Info($"device '{id}': attention button of root port '{port.Name}' pressed");
            }
            catch (PciException e)
            {
                throw new HotplugException($"device_del '{id}': {e.Message}");
            }
            return;
        }
        if (_ports.ContainsKey(id))
            throw new HotplugException($"Device '{id}' is a pcie-root-port, which cannot be unplugged");
        if (HasFunction(id) || ColdPlugged(id))
            throw new HotplugException($"Device '{id}' is on pcie.0 and cannot be unplugged (only devices behind a pcie-root-port can)");
        throw new HotplugException($"Device '{id}' not found");
    }

    /// <summary>Whether a function on <paramref name="bus"/> is the device <paramref name="id"/>.</summary>
    private static bool Holds(PciBus bus, string id)
    {
        foreach (var (_, _, device) in bus.Functions)
            if (device.QdevId == id) return true;
        return false;
    }

    public void Dispose()
    {
        _vm.MainLoop.Remove(_token);
        _removedEvent.Dispose();
        _backends.Dispose();
    }
}
