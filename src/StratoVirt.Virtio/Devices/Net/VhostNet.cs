using StratoVirt.Sys;
using StratoVirt.Virtio.Vhost;

namespace StratoVirt.Virtio.Devices.Net;

/// <summary>
/// virtio-net (virtio 1.2, section 5.1) whose receive and transmit queues the host kernel's vhost-net serves
/// straight from and to the tap (-netdev tap,vhost=on): frames never pass through the VMM. The tap carries the
/// same 12-byte vnet header and offloads as for the userspace device; the VMM keeps the configuration space
/// (MAC, link up) and relays the interrupts. It has no control queue, as the userspace device, and is not a
/// replaceable hotplug slot (upstream's vhost-net is not slot-bound either).
/// </summary>
public sealed class VhostNet : VhostKernelDevice
{
    /// <summary>The feature bits vhost-net implements itself: the ring and transport bits (24 and up) and
    /// mergeable receive buffers; the offloads are the tap's.</summary>
    public const ulong KernelBits = ~0UL << 24 | VirtioNet.FeatureMrgRxbuf;

    private readonly INetBackend _tap;
    private readonly byte[] _mac;

    /// <param name="tap">The tap, owned by the device from now on.</param>
    /// <param name="vhost">/dev/vhost-net, opened or inherited; owned by the device from now on.</param>
    /// <param name="mac">6 bytes, unicast; null: a random locally administered address.</param>
    public VhostNet(INetBackend tap, VhostDevice vhost, byte[]? mac) : base(VirtioDeviceId.Net, 2, MakeRings(tap, vhost), VirtioNet.TapFeatures, KernelBits)
    {
        _tap = tap;
        try { VirtioNet.CheckMac(mac); }
        catch
        {
            Dispose();
            throw;
        }
        _mac = mac is null ? VirtioNet.RandomMac() : (byte[])mac.Clone();
    }

    /// <summary>The rings, or (when they cannot be made) the tap closed as the vhost device is.</summary>
    private static VhostKernelRings MakeRings(INetBackend tap, VhostDevice vhost)
    {
        try { return new VhostKernelRings(vhost, 2); }
        catch
        {
            tap.Dispose();
            throw;
        }
    }

    public string BackendName => _tap.Name;

    public byte[] Mac => (byte[])_mac.Clone();

    public override string StateName => NetState.Name;
    public override int StateVersion => NetState.Version;

    public override void ReadConfig(uint offset, Span<byte> data) => VirtioNet.ReadNetConfig(_mac, true, offset, data);

    protected override void StartBackend()
    {
        _tap.SetOffload(VirtioNet.TunOffloads(Features));
        for (uint ring = 0; ring < 2; ring++) Rings.Device.SetNetBackend(ring, _tap.Fd);
    }

    protected override void StopBackend()
    {
        for (uint ring = 0; ring < 2; ring++) Rings.Device.SetNetBackend(ring, -1);
    }

    /// <summary>Both queues are the kernel's; nothing comes here.</summary>
    public override void ProcessQueue(int index) { }

    public override void Dispose()
    {
        base.Dispose(); // detaches the kernel from the tap before the tap closes
        _tap.Dispose();
    }
}
