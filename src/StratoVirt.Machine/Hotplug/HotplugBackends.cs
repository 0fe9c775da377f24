using StratoVirt.Sys;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;

namespace StratoVirt.Machine;

/// <summary>
/// The backends blockdev-add and netdev_add stored by name, opened at once, until device_add takes them into a
/// device (or blockdev-del/netdev_del closes them). Which device uses a name it no longer holds is its owner's
/// to say: <paramref name="driveUser"/> and <paramref name="netdevUser"/> give that device's id (or null), and
/// <paramref name="tapFdInUse"/> whether a device's tap already has an inherited fd. chardev-add's chardevs are
/// only a socket path (the device connects): a device names one and it stays stored, in use while
/// <paramref name="chardevUser"/> names a device, until chardev-remove. Used on the main loop only.
/// </summary>
internal sealed class HotplugBackends(Func<string, string?> driveUser, Func<string, string?> netdevUser, Func<int, bool> tapFdInUse,
    Func<string, string?> chardevUser) : IDisposable
{
    private readonly Dictionary<string, RawImage> _drives = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tap> _netdevs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _chardevs = new(StringComparer.Ordinal);

    public void BlockdevAdd(BlockdevSpec spec)
    {
        if (_drives.ContainsKey(spec.NodeName) || driveUser(spec.NodeName) is not null)
            throw new HotplugException($"Block device node '{spec.NodeName}' already exists");
        try
        {
            _drives.Add(spec.NodeName, RawImage.Open(spec.Filename, spec.ReadOnly, spec.Direct));
        }
        catch (SysException e)
        {
            throw new HotplugException(e.Message);
        }
    }

    public void BlockdevDel(string nodeName) => RemoveStored(_drives, driveUser, nodeName, "Block device node");

    public void NetdevAdd(NetdevSpec spec)
    {
        using var owned = spec.OwnedFd;
        if (_netdevs.ContainsKey(spec.Id) || netdevUser(spec.Id) is not null)
            throw new HotplugException($"netdev '{spec.Id}' already exists");
        try
        {
            Tap tap;
            if (owned is not null)
            {
                tap = Tap.Adopt(owned.Fd);
                owned.SetHandleAsInvalid(); // the tap owns the fd now
            }
            else if (spec.InheritedFd is { } fd)
            {
                if (fd < 3 || StoresTap(fd) || tapFdInUse(fd))
                    throw new HotplugException($"netdev '{spec.Id}': fd {fd} is not a free inherited tap descriptor");
                tap = Tap.Adopt(fd);
            }
            else
            {
                tap = Tap.Open(spec.IfName ?? throw new HotplugException($"netdev '{spec.Id}' needs ifname, fd or fds"));
            }
            _netdevs.Add(spec.Id, tap);
        }
        catch (TapException e)
        {
            throw new HotplugException($"netdev '{spec.Id}': {e.Message}");
        }
    }

    /// <summary>Whether a stored tap has the descriptor <paramref name="fd"/>.</summary>
    private bool StoresTap(int fd)
    {
        foreach (var tap in _netdevs.Values)
            if (tap.Fd == fd) return true;
        return false;
    }

    public void NetdevDel(string id) => RemoveStored(_netdevs, netdevUser, id, "netdev");

    /// <summary>Stores a chardev; an id stored already is upstream's refusal.</summary>
    public void ChardevAdd(ChardevSpec spec)
    {
        if (!_chardevs.TryAdd(spec.Id, spec.Path)) throw new HotplugException($"Chardev \"{spec.Id}\" has been added");
    }

    /// <summary>Forgets a stored chardev; refuses one a device uses (upstream's text for an unknown id).</summary>
    public void ChardevRemove(string id)
    {
        if (!_chardevs.ContainsKey(id)) throw new HotplugException($"Chardev {id} not found");
        if (chardevUser(id) is { } device) throw new HotplugException($"Chardev {id} is in use by device '{device}'; device_del it first");
        _chardevs.Remove(id);
    }

    /// <summary>The socket path of the stored chardev <paramref name="name"/>, for a vhost-user-blk device; an unknown
    /// name or one another device uses is refused with upstream's prefix.</summary>
    public string Chardev(string name)
    {
        if (!_chardevs.TryGetValue(name, out string? path))
            throw new HotplugException($"Failed to add vhost user blk pci: Chardev: \"{name}\" not found for vhost user blk");
        if (chardevUser(name) is { } device)
            throw new HotplugException($"Failed to add vhost user blk pci: Chardev: \"{name}\" is in use by device '{device}'");
        return path;
    }

    /// <summary>The stored image <paramref name="name"/>, still stored (a device that fails to take it leaves it
    /// there); <see cref="Release(string, HotplugKind)"/> hands it over.</summary>
    public RawImage Drive(string name) =>
        _drives.GetValueOrDefault(name) ?? throw new HotplugException($"No block device node '{name}' (add it first)");

    public Tap Netdev(string name) =>
        _netdevs.GetValueOrDefault(name) ?? throw new HotplugException($"No netdev '{name}' (add it first)");

    /// <summary>Forgets a stored image or tap a device took (the device owns it now); a chardev stays stored.</summary>
    public void Release(string name, HotplugKind kind)
    {
        if (kind == HotplugKind.Block) _drives.Remove(name);
        else if (kind == HotplugKind.Net) _netdevs.Remove(name);
    }

    /// <summary>Closes a stored backend; refuses one a device uses, or an unknown name.</summary>
    private static void RemoveStored<T>(Dictionary<string, T> stored, Func<string, string?> user, string name, string what)
        where T : IDisposable
    {
        if (stored.Remove(name, out var backend))
        {
            backend.Dispose();
            return;
        }
        if (user(name) is { } id) throw new HotplugException($"{what} '{name}' is in use by device '{id}'; device_del it first");
        throw new HotplugException($"{what} '{name}' not found");
    }

    /// <summary>Closes the stored backends no device took.</summary>
    public void Dispose()
    {
        foreach (var image in _drives.Values) image.Dispose();
        foreach (var tap in _netdevs.Values) tap.Dispose();
        _drives.Clear();
        _netdevs.Clear();
        _chardevs.Clear();
    }
}
