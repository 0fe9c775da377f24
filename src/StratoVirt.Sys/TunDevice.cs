using System.Runtime.InteropServices;
using System.Text;

namespace StratoVirt.Sys;

/// <summary>The ioctls of a /dev/net/tun descriptor that a tap backend makes. Each returns 0 or the errno, so the
/// caller can say in its own words what went wrong (no such interface, no permission, ...).</summary>
public static unsafe class TunDevice
{
    /// <summary>TUNSETIFF: attaches the descriptor to interface <paramref name="name"/> (created if the caller
    /// may) with IFF_* <paramref name="flags"/>; <paramref name="attached"/> is the name the kernel reports.</summary>
    public static int SetInterface(int fd, string name, short flags, out string attached)
    {
        var req = new IfReq { Flags = flags };
        // req is a local of this frame: its 16-byte name buffer cannot move, and the caller checked the name fits.
        Encoding.UTF8.GetBytes(name, new Span<byte>(req.Name, Libc.IFNAMSIZ));
        int result = Libc.Ioctl(fd, Libc.TUNSETIFF, &req);
        attached = result < 0 ? "" : NameOf(req);
        return result < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>TUNGETIFF: the interface the descriptor is attached to and its IFF_* flags.</summary>
    public static int GetInterface(int fd, out string name, out short flags)
    {
        var req = new IfReq();
        // req is a local of this frame that the kernel fills.
        int result = Libc.Ioctl(fd, Libc.TUNGETIFF, &req);
        name = result < 0 ? "" : NameOf(req);
        flags = req.Flags;
        return result < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>TUNSETVNETHDRSZ: the size of the virtio_net_hdr that leads every frame.</summary>
    public static int SetVnetHeaderSize(int fd, int size)
    {
        // size is a local of this frame that the kernel reads.
        return Libc.Ioctl(fd, Libc.TUNSETVNETHDRSZ, &size) < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>TUNGETVNETHDRSZ.</summary>
    public static int GetVnetHeaderSize(int fd, out int size)
    {
        int value = 0;
        // value is a local of this frame that the kernel writes.
        int result = Libc.Ioctl(fd, Libc.TUNGETVNETHDRSZ, &value);
        size = value;
        return result < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>TUNSETOFFLOAD: the TUN_F_* offloads the reader of the descriptor accepts.</summary>
    public static int SetOffload(int fd, uint tunFlags) =>
        Libc.Ioctl(fd, Libc.TUNSETOFFLOAD, (ulong)tunFlags) < 0 ? Marshal.GetLastPInvokeError() : 0;

    /// <summary>FIONBIO: makes the descriptor non-blocking (an ioctl, which the seccomp lists allow by request
    /// number, rather than fcntl F_SETFL).</summary>
    public static int SetNonBlocking(int fd)
    {
        int on = 1;
        // on is a local of this frame that the kernel reads.
        return Libc.Ioctl(fd, Libc.FIONBIO, &on) < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>FIOCLEX: close-on-exec.</summary>
    public static void SetCloseOnExec(int fd) => Libc.Ioctl(fd, Libc.FIOCLEX, 0UL);

    private static string NameOf(IfReq req)
    {
        // req is a by-value copy on this frame; its name buffer is IFNAMSIZ bytes.
        var name = new ReadOnlySpan<byte>(req.Name, Libc.IFNAMSIZ);
        int end = name.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
    }
}
