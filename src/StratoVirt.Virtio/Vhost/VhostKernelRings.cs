using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.Vhost;

/// <summary>
/// The rings of a virtio device that a vhost-kernel device serves: virtio queues 0 to <see cref="Count"/>-1 are
/// the kernel's rings 0 to Count-1. On activation it hands the kernel the negotiated features, guest RAM, each
/// ring's size, start and host addresses, and the kick, call and error eventfds of <see cref="Queues"/> (the kick
/// is the queue's notify eventfd: KVM's ioeventfd writes it, so a notification never leaves the kernel).
/// </summary>
public sealed class VhostKernelRings : IDisposable
{
    private readonly VhostMemoryRegion[] _table = new VhostMemoryRegion[8];

    /// <param name="device">The vhost device, which this object owns from now on (closed here if the
    /// constructor fails); this process becomes its owner (VHOST_SET_OWNER).</param>
    /// <param name="count">How many of the device's first queues the kernel serves.</param>
    public VhostKernelRings(VhostDevice device, int count)
    {
        Device = device;
        try
        {
            Queues = new BackendQueues(count, device.Name);
            device.SetOwner();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public VhostDevice Device { get; }

    /// <summary>The queues the kernel serves, with their call and error eventfds.</summary>
    public BackendQueues Queues { get; } = null!;

    public int Count => Queues.Count;

    /// <summary>
    /// The features to offer: <paramref name="offered"/> less the bits in <paramref name="kernelBits"/> (those the
    /// kernel implements, rather than the tap or the VMM) that the kernel does not offer (<paramref name="kernelOffers"/>).
    /// </summary>
    public static ulong Offer(ulong offered, ulong kernelBits, ulong kernelOffers) => offered & ~(kernelBits & ~kernelOffers);

    /// <summary>Hands the rings to the kernel. <paramref name="queues"/> are the device's queues (activated, so
    /// inside guest RAM); <paramref name="kick"/> gives queue i's notify eventfd.</summary>
    public void Start(GuestMemory memory, Func<int, Virtqueue> queues, ulong features, Func<int, EventFd> kick)
    {
        Device.SetFeatures(features & Device.Features);
        SetMemoryTable(memory);
        for (int i = 0; i < Count; i++)
        {
            var q = queues(i);
            if (!q.Active) throw new VirtqueueException($"queue {i}: the driver did not make it ready");
            uint ring = (uint)i;
            Device.SetVringNum(ring, q.Size);
            Device.SetVringBase(ring, q.Positions.NextAvail);
            Device.SetVringAddress(ring, Host(memory, q.DescTable, 16UL * q.Size), Host(memory, q.UsedRing, 6 + 8UL * q.Size),
                Host(memory, q.AvailRing, 6 + 2UL * q.Size));
            Device.SetVringKick(ring, kick(i).Fd);
            Device.SetVringCall(ring, Queues.Call(i).Fd);
            Device.SetVringErr(ring, Queues.Error(i).Fd);
        }
    }

    /// <summary>Stops the kernel using the rings (it keeps its memory table until the next start).</summary>
    public void Stop()
    {
        for (int i = 0; i < Count; i++) Device.GetVringBase((uint)i);
        Queues.Drain();
    }

    private static nint Host(GuestMemory memory, ulong address, ulong length) =>
        memory.TryGetHostAddress(address, length, out nint host) ? host
            : throw new VirtqueueException($"ring area at 0x{address:x} (+{length}) is outside guest RAM");

    private void SetMemoryTable(GuestMemory memory)
    {
        var regions = memory.Regions;
        if (regions.Count > _table.Length)
            throw new InvalidOperationException($"guest RAM has {regions.Count} regions; vhost takes at most {_table.Length} here");
        for (int i = 0; i < regions.Count; i++)
            _table[i] = new VhostMemoryRegion
            {
                GuestPhysAddr = regions[i].GuestAddress, MemorySize = regions[i].Size, UserspaceAddr = (ulong)regions[i].HostAddress,
            };
        Device.SetMemoryTable(_table.AsSpan(0, regions.Count));
    }

    public void Dispose()
    {
        Device.Dispose();
        Queues?.Dispose();
    }
}
