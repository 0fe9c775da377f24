using StratoVirt.Sys;
using StratoVirt.Virtio.Devices.Net;

namespace StratoVirt.Tests.Virtio;

/// <summary>
/// A stand-in for a tap: an AF_UNIX SOCK_SEQPACKET pair keeps frame boundaries like a tap does. The device owns one
/// end; the test plays the host network on the other.
/// </summary>
public sealed unsafe class PacketPair : INetBackend
{
    private readonly FileDescriptor _device, _peer;
    private readonly byte[] _buffer = new byte[256 * 1024];

    public PacketPair()
    {
        int* fds = stackalloc int[2];
        SysException.Check(Libc.SocketPair(Libc.AF_UNIX,
            Libc.SOCK_SEQPACKET | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0, fds), "socketpair");
        _device = new FileDescriptor(fds[0]);
        _peer = new FileDescriptor(fds[1]);
    }

    public int Fd => _device.Fd;
    public string Name => "pair0";
    public uint? Offload { get; private set; }
    public void SetOffload(uint tunFlags) => Offload = tunFlags;

    /// <summary>The host sends a frame (header included) towards the guest.</summary>
    public void Send(byte[] frame)
    {
        fixed (byte* p = frame)
            Assert.Equal(frame.Length, (int)Libc.Write(_peer.Fd, p, (nuint)frame.Length));
    }

    /// <summary>The next frame the guest sent, or null if there is none.</summary>
    public byte[]? Receive() => ReadFrom(_peer.Fd);

    /// <summary>Reads a frame from the device's own end (to see what the device left unread).</summary>
    public byte[]? ReceiveOnDeviceEnd() => ReadFrom(_device.Fd);

    private byte[]? ReadFrom(int fd)
    {
        fixed (byte* p = _buffer)
        {
            nint n = Libc.Read(fd, p, (nuint)_buffer.Length);
            return n < 0 ? null : _buffer.AsSpan(0, (int)n).ToArray();
        }
    }

    public void ClosePeer() => _peer.Dispose();

    public void Dispose()
    {
        _device.Dispose();
        _peer.Dispose();
    }
}
