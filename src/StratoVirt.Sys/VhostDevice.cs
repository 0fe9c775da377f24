using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>A vhost device that cannot be used: missing, not permitted, or an fd that is not one.</summary>
public sealed class VhostException(string message) : VmmException(message);

/// <summary>
/// An open vhost-kernel device (/dev/vhost-net, /dev/vhost-vsock): the kernel serves a virtio device's rings in
/// guest memory itself, kicked and signalling through eventfds. Owns the fd; closing it stops the kernel's worker.
/// Each call throws SysException naming the ioctl when the kernel refuses it.
/// </summary>
public sealed unsafe class VhostDevice : IDisposable
{
    private readonly FileDescriptor _fd;

    private VhostDevice(FileDescriptor fd, string name, ulong features)
    {
        _fd = fd;
        Name = name;
        Features = features;
    }

    /// <summary>What messages call it: the device path, or "vhostfd N".</summary>
    public string Name { get; }

    /// <summary>The features the kernel offers (VHOST_GET_FEATURES).</summary>
    public ulong Features { get; }

    public int Fd => _fd.Fd;

    /// <summary>Opens <paramref name="path"/> (e.g. /dev/vhost-vsock). Throws VhostException naming the device when
    /// it is missing (its module not loaded), not permitted, or not a vhost device.</summary>
    public static VhostDevice Open(string path)
    {
        int raw = Libc.Open(path, Libc.O_RDWR | Libc.O_CLOEXEC, 0);
        if (raw < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new VhostException(errno switch
            {
                Libc.ENOENT or Libc.ENODEV => $"{path} does not exist (is its vhost module loaded?)",
                Libc.EACCES or Libc.EPERM => $"no permission to open {path}",
                _ => new SysException($"open {path}", errno).Message,
            });
        }
        var fd = new FileDescriptor(raw);
        if (QueryFeatures(raw, out ulong features) is { } errnoFeatures)
        {
            fd.Dispose();
            throw new VhostException($"{path} is not a vhost device (VHOST_GET_FEATURES: {Libc.ErrorText(errnoFeatures)})");
        }
        return new VhostDevice(fd, path, features);
    }

    /// <summary>Takes over an inherited fd (vhostfd=N): it must be an open character device that answers
    /// VHOST_GET_FEATURES, else a one-line VhostException "vhostfd N is not a vhost device (...)" and the fd is left
    /// as it was. The adopted fd is made close-on-exec.</summary>
    public static VhostDevice Adopt(int fd)
    {
        string name = $"vhostfd {fd}";
        if (fd < 0) throw new VhostException($"{name} is not a vhost device (not a file descriptor)");
        int errno = FileStatus.Get(fd, out var status);
        if (errno != 0)
            throw new VhostException($"{name} is not a vhost device ({(errno == Libc.EBADF ? "not an open file descriptor" : Libc.ErrorText(errno))})");
        if ((status.Mode & Libc.S_IFMT) != Libc.S_IFCHR)
            throw new VhostException($"{name} is not a vhost device (not a character device)");
        if (QueryFeatures(fd, out ulong features) is { } errnoFeatures)
            throw new VhostException($"{name} is not a vhost device (VHOST_GET_FEATURES: {Libc.ErrorText(errnoFeatures)})");
        TunDevice.SetCloseOnExec(fd);
        return new VhostDevice(new FileDescriptor(fd), name, features);
    }

    private static int? QueryFeatures(int fd, out ulong features)
    {
        ulong value = 0;
        // value is a local of this frame that the kernel writes.
        int result = Libc.Ioctl(fd, Libc.VHOST_GET_FEATURES, &value);
        features = value;
        return result < 0 ? Marshal.GetLastPInvokeError() : null;
    }

    /// <summary>VHOST_SET_OWNER: binds the device to this process (its memory and its kernel worker).</summary>
    public void SetOwner() => Check(Libc.Ioctl(Fd, Libc.VHOST_SET_OWNER, 0UL), "VHOST_SET_OWNER");

    /// <summary>VHOST_SET_FEATURES: the features the driver accepted, among those the kernel offers.</summary>
    public void SetFeatures(ulong features)
    {
        // features is a local of this frame that the kernel reads.
        Check(Libc.Ioctl(Fd, Libc.VHOST_SET_FEATURES, &features), "VHOST_SET_FEATURES");
    }

    /// <summary>VHOST_SET_MEM_TABLE: guest RAM as (guest address, size, host address) regions.</summary>
    public void SetMemoryTable(ReadOnlySpan<VhostMemoryRegion> regions)
    {
        int size = sizeof(VhostMemoryHeader) + regions.Length * sizeof(VhostMemoryRegion);
        byte* table = stackalloc byte[size];
        *(VhostMemoryHeader*)table = new VhostMemoryHeader { Count = (uint)regions.Length };
        // The regions follow the header in this frame's buffer, sized for both above.
        regions.CopyTo(new Span<VhostMemoryRegion>(table + sizeof(VhostMemoryHeader), regions.Length));
        Check(Libc.Ioctl(Fd, Libc.VHOST_SET_MEM_TABLE, table), "VHOST_SET_MEM_TABLE");
    }

    public void SetVringNum(uint index, uint size) => SetState(Libc.VHOST_SET_VRING_NUM, index, size, "VHOST_SET_VRING_NUM");

    /// <summary>VHOST_SET_VRING_BASE: the next available index the kernel takes from the ring.</summary>
    public void SetVringBase(uint index, uint next) => SetState(Libc.VHOST_SET_VRING_BASE, index, next, "VHOST_SET_VRING_BASE");

    /// <summary>VHOST_GET_VRING_BASE: stops the ring and returns the next available index it would take.</summary>
    public uint GetVringBase(uint index)
    {
        var state = new VhostVringState { Index = index };
        // state is a local of this frame that the kernel reads and writes.
        Check(Libc.Ioctl(Fd, Libc.VHOST_GET_VRING_BASE, &state), "VHOST_GET_VRING_BASE");
        return state.Num;
    }

    private void SetState(ulong request, uint index, uint num, string what)
    {
        var state = new VhostVringState { Index = index, Num = num };
        // state is a local of this frame that the kernel reads.
        Check(Libc.Ioctl(Fd, request, &state), what);
    }

    /// <summary>VHOST_SET_VRING_ADDR: the ring's areas as host addresses.</summary>
    public void SetVringAddress(uint index, nint descriptors, nint used, nint available)
    {
        var addr = new VhostVringAddr
        {
            Index = index, DescUserAddr = (ulong)descriptors, UsedUserAddr = (ulong)used, AvailUserAddr = (ulong)available,
        };
        // addr is a local of this frame that the kernel reads.
        Check(Libc.Ioctl(Fd, Libc.VHOST_SET_VRING_ADDR, &addr), "VHOST_SET_VRING_ADDR");
    }

    /// <summary>VHOST_SET_VRING_KICK: the eventfd the driver's notifications arrive on.</summary>
    public void SetVringKick(uint index, int fd) => SetFile(Libc.VHOST_SET_VRING_KICK, index, fd, "VHOST_SET_VRING_KICK");

    /// <summary>VHOST_SET_VRING_CALL: the eventfd the kernel signals when the driver wants an interrupt.</summary>
    public void SetVringCall(uint index, int fd) => SetFile(Libc.VHOST_SET_VRING_CALL, index, fd, "VHOST_SET_VRING_CALL");

    /// <summary>VHOST_SET_VRING_ERR: the eventfd the kernel signals when it meets a bad ring.</summary>
    public void SetVringErr(uint index, int fd) => SetFile(Libc.VHOST_SET_VRING_ERR, index, fd, "VHOST_SET_VRING_ERR");

    /// <summary>VHOST_NET_SET_BACKEND: the tap whose frames ring <paramref name="index"/> carries; -1 detaches it.</summary>
    public void SetNetBackend(uint index, int tapFd) => SetFile(Libc.VHOST_NET_SET_BACKEND, index, tapFd, "VHOST_NET_SET_BACKEND");

    private void SetFile(ulong request, uint index, int fd, string what)
    {
        var file = new VhostVringFile { Index = index, Fd = fd };
        // file is a local of this frame that the kernel reads.
        Check(Libc.Ioctl(Fd, request, &file), what);
    }

    /// <summary>VHOST_VSOCK_SET_GUEST_CID: the guest's context id; returns the errno (EADDRINUSE: another VM has
    /// it) or 0.</summary>
    public int SetGuestCid(ulong cid) =>
        // cid is a parameter on this frame that the kernel reads.
        Libc.Ioctl(Fd, Libc.VHOST_VSOCK_SET_GUEST_CID, &cid) < 0 ? Marshal.GetLastPInvokeError() : 0;

    /// <summary>VHOST_VSOCK_SET_RUNNING: starts or stops the kernel's vsock device.</summary>
    public void SetRunning(bool running)
    {
        int value = running ? 1 : 0;
        // value is a local of this frame that the kernel reads.
        Check(Libc.Ioctl(Fd, Libc.VHOST_VSOCK_SET_RUNNING, &value), "VHOST_VSOCK_SET_RUNNING");
    }

    private void Check(int result, string what)
    {
        if (result < 0) throw SysException.Last($"{Name}: {what}");
    }

    public void Dispose() => _fd.Dispose();
}
