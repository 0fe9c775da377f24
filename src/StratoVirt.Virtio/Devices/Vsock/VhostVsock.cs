using System.Buffers.Binary;
using StratoVirt.Sys;
using StratoVirt.Virtio.Vhost;

namespace StratoVirt.Virtio.Devices.Vsock;

/// <summary>
/// virtio-vsock (virtio 1.2, section 5.10) served by the host kernel's vhost-vsock: the receive and transmit
/// queues (0, 1) are the kernel's, so guest sockets reach host AF_VSOCK sockets directly; the event queue (2)
/// stays here and keeps its buffers (this device sends no transport-reset event: it is never migrated).
/// </summary>
public sealed class VhostVsock : VhostKernelDevice
{
    private readonly byte[] _config = new byte[8];

    /// <param name="guestCid">The guest's context id, 3 to 2^32-2; refused by the kernel when another VM has it.</param>
    /// <param name="vhost">/dev/vhost-vsock, opened or inherited; owned by the device from now on.</param>
    public VhostVsock(ulong guestCid, VhostDevice vhost) : base(VirtioDeviceId.Vsock, 3, new VhostKernelRings(vhost, 2), 0, ulong.MaxValue)
    {
        int errno = guestCid is < 3 or >= uint.MaxValue ? Libc.EINVAL : vhost.SetGuestCid(guestCid);
        if (errno != 0)
        {
            Dispose();
            throw new ArgumentException(errno switch
            {
                _ when guestCid is < 3 or >= uint.MaxValue => $"vsock guest-cid {guestCid} is out of range: it must be 3 to {uint.MaxValue - 1}",
                Libc.EADDRINUSE => $"vsock guest-cid {guestCid} is in use by another VM on this host",
                _ => $"{vhost.Name}: VHOST_VSOCK_SET_GUEST_CID {guestCid}: {Libc.ErrorText(errno)}",
            });
        }
        GuestCid = guestCid;
        BinaryPrimitives.WriteUInt64LittleEndian(_config, guestCid);
    }

    public ulong GuestCid { get; }

    public override string StateName => VsockState.Name;
    public override int StateVersion => VsockState.Version;

    public override void ReadConfig(uint offset, Span<byte> data) => ReadFrom(_config, offset, data);

    protected override void StartBackend() => Rings.Device.SetRunning(true);

    protected override void StopBackend() => Rings.Device.SetRunning(false);

    /// <summary>Only the event queue comes here; its buffers wait for events.</summary>
    public override void ProcessQueue(int index) { }
}
