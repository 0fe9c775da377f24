using System.Text;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Devices.Net;

/// <summary>
/// The host side of a virtio-net device: a non-blocking fd on which each read returns one frame and each write
/// sends one, every frame led by a 12-byte virtio_net_hdr (the virtio 1.x layout, num_buffers included).
/// </summary>
public interface INetBackend : IDisposable
{
    int Fd { get; }

    /// <summary>What messages call it (the tap's interface name).</summary>
    string Name { get; }

    /// <summary>Tells the backend which offloads (TUN_F_* bits) the guest accepts on frames it receives.</summary>
    void SetOffload(uint tunFlags);
}

/// <summary>A backend's bad host configuration (no such tap, no permission, an fd that is not a tap).</summary>
public sealed class TapException(string message) : VmmException(message);

/// <summary>
/// A Linux tap interface (-netdev tap): opened by name through /dev/net/tun, or adopted from an fd the caller
/// already opened. Frames carry a 12-byte vnet header and no packet-information prefix.
/// </summary>
public sealed class Tap : INetBackend
{
    /// <summary>The virtio 1.x virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers.</summary>
    public const int VnetHeaderSize = 12;

    private readonly FileDescriptor _fd;

    private Tap(FileDescriptor fd, string name)
    {
        _fd = fd;
        Name = name;
    }

    public int Fd => _fd.Fd;
    public string Name { get; }

    /// <summary>
    /// Opens (creating it if the caller may) the tap <paramref name="ifname"/> with vnet headers, non-blocking.
    /// Throws TapException with a message naming the interface when that is not possible.
    /// </summary>
    public static Tap Open(string ifname)
    {
        int nameLength = Encoding.UTF8.GetByteCount(ifname);
        if (nameLength == 0) throw new TapException("tap: the interface name is empty");
        if (nameLength >= Libc.IFNAMSIZ)
            throw new TapException($"tap {ifname}: the interface name is longer than {Libc.IFNAMSIZ - 1} bytes");
        if (ifname.Contains('/') || ifname.Contains('\0') || HasWhiteSpace(ifname))
            throw new TapException($"tap {ifname}: the interface name contains '/', whitespace or NUL");

        int raw = Libc.Open("/dev/net/tun", Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC, 0);
        if (raw < 0)
        {
            var e = SysException.Last("open /dev/net/tun");
            throw new TapException(e.Errno switch
            {
                Libc.ENOENT or Libc.ENODEV => $"tap {ifname}: /dev/net/tun does not exist (is the tun module loaded?)",
                Libc.EACCES or Libc.EPERM => $"tap {ifname}: no permission to open /dev/net/tun",
                _ => $"tap {ifname}: {e.Message}",
            });
        }
        var fd = new FileDescriptor(raw);
        try
        {
            int errno = TunDevice.SetInterface(fd.Fd, ifname, (short)(Libc.IFF_TAP | Libc.IFF_NO_PI | Libc.IFF_VNET_HDR), out string name);
            if (errno != 0)
            {
                throw new TapException(errno switch
                {
                    Libc.EPERM or Libc.EACCES =>
                        $"tap {ifname}: no permission to create or attach to the interface (needs CAP_NET_ADMIN or to be its owner)",
                    Libc.EBUSY => $"tap {ifname}: the interface is in use by another process",
                    Libc.EINVAL => $"tap {ifname}: the interface exists but is not a tap, or its name is invalid",
                    _ => $"tap {ifname}: {new SysException("TUNSETIFF", errno).Message}",
                });
            }
            SetHeaderSize(fd.Fd, name);
            return new Tap(fd, name);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    private static bool HasWhiteSpace(string s)
    {
        foreach (char c in s)
            if (char.IsWhiteSpace(c)) return true;
        return false;
    }

    /// <summary>
    /// Takes ownership of an open tap fd (-netdev tap,fd=N): it must be a tap opened with IFF_VNET_HDR and
    /// IFF_NO_PI. The fd is made non-blocking and close-on-exec. Throws TapException otherwise (the fd stays open).
    /// </summary>
    public static Tap Adopt(int fd)
    {
        if (fd < 0) throw new TapException($"tap fd {fd}: not a file descriptor");
        int errno = TunDevice.GetInterface(fd, out string name, out short flags);
        if (errno != 0)
        {
            throw new TapException(errno == Libc.EBADF
                ? $"tap fd {fd}: not an open file descriptor"
                : $"tap fd {fd}: not an attached tap device (TUNGETIFF: {Libc.ErrorText(errno)})");
        }
        if ((flags & Libc.IFF_TAP) == 0)
            throw new TapException($"tap fd {fd} ({name}): a tun (layer 3) device, not a tap");
        if ((flags & Libc.IFF_VNET_HDR) == 0)
            throw new TapException($"tap fd {fd} ({name}): opened without IFF_VNET_HDR (virtio-net needs vnet headers)");
        if ((flags & Libc.IFF_NO_PI) == 0)
            throw new TapException($"tap fd {fd} ({name}): opened without IFF_NO_PI (frames would carry a packet-information prefix)");
        if ((errno = TunDevice.SetNonBlocking(fd)) != 0)
            throw new TapException($"tap fd {fd} ({name}): {new SysException("FIONBIO", errno).Message}");
        SetHeaderSize(fd, name);
        TunDevice.SetCloseOnExec(fd);
        return new Tap(new FileDescriptor(fd), name);
    }

    private static void SetHeaderSize(int fd, string name)
    {
        int errno = TunDevice.SetVnetHeaderSize(fd, VnetHeaderSize);
        if (errno != 0) throw new TapException($"tap {name}: {new SysException("TUNSETVNETHDRSZ 12", errno).Message}");
    }

    /// <summary>The vnet header size the kernel uses on this tap (12 once opened).</summary>
    public int HeaderSize
    {
        get
        {
            int errno = TunDevice.GetVnetHeaderSize(Fd, out int size);
            return errno == 0 ? size : throw new SysException($"tap {Name}: TUNGETVNETHDRSZ", errno);
        }
    }

    public void SetOffload(uint tunFlags)
    {
        int errno = TunDevice.SetOffload(Fd, tunFlags);
        if (errno != 0) Log.Warn($"tap {Name}: {new SysException($"TUNSETOFFLOAD 0x{tunFlags:x}", errno).Message}");
    }

    public void Dispose() => _fd.Dispose();
}
