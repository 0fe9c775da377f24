using StratoVirt.Sys;

namespace StratoVirt.Kvm;

/// <summary>Handles one write taken from the <see cref="CoalescedRing"/>: a port (<paramref name="pio"/>) or an MMIO
/// address, and the bytes the guest wrote there.</summary>
public delegate void CoalescedWriteHandler(ulong address, bool pio, ReadOnlySpan<byte> data);

/// <summary>
/// KVM's coalesced ring (struct kvm_coalesced_mmio_ring): one page the VM's vCPUs share, in which KVM queues the
/// guest's writes to the zones registered with KVM_REGISTER_COALESCED_MMIO instead of exiting to the VMM for each.
/// KVM appends at <c>last</c> and, once the ring is full, exits for the write as usual; the VMM takes entries from
/// <c>first</c>. The VMM drains the ring before it serves any exit, so that a device sees the queued writes in their
/// order with every access that exited after them.
/// </summary>
public sealed unsafe class CoalescedRing : IDisposable
{
    private const int HeaderSize = 8;  // u32 first, u32 last
    private const int EntrySize = 24;  // u64 phys_addr, u32 len, u32 pio, u8 data[8]
    private const int DataOffset = 16;

    /// <summary>Entries the ring holds (KVM_COALESCED_MMIO_MAX: 170 on 4 KiB pages); one slot always stays free.</summary>
    public int Capacity { get; }

    /// <summary>The longest write an entry carries.</summary>
    public const int MaxDataLength = 8;

    private byte* _page;
    private readonly int _pageSize;
    private readonly bool _owned;
    private readonly Lock _gate = new();

    /// <param name="page">The ring's page: KVM's (mapped from a vCPU fd), or any page laid out the same.</param>
    /// <param name="pageSize">The host's page size, which sets how many entries KVM keeps in it.</param>
    /// <param name="owned">Whether <see cref="Dispose"/> unmaps it.</param>
    public CoalescedRing(nint page, int pageSize, bool owned)
    {
        if (page == 0) throw new ArgumentException("the coalesced ring needs a page", nameof(page));
        if (pageSize < 4096 || (pageSize & (pageSize - 1)) != 0)
            throw new ArgumentException($"a page of {pageSize} bytes", nameof(pageSize));
        _page = (byte*)page;
        _pageSize = pageSize;
        _owned = owned;
        Capacity = (pageSize - HeaderSize) / EntrySize;
    }

    // The page is valid until Dispose, and the header is two aligned u32 words at its start.
    private ref uint First => ref *(uint*)_page;
    private ref uint Last => ref *(uint*)(_page + 4);

    /// <summary>How many writes the drains have handed over, in all.</summary>
    public long Taken { get; private set; }

    /// <summary>Whether KVM has queued nothing since the last drain (a cheap check before taking the lock).</summary>
    public bool IsEmpty => Volatile.Read(ref First) == Volatile.Read(ref Last);

    /// <summary>
    /// Hands every queued write to <paramref name="handler"/>, oldest first, and frees its entry after the handler
    /// returns; returns how many. One drain runs at a time, so vCPUs that exit together keep the order. Indices or a
    /// length KVM cannot have written (the page is not the guest's, but it is checked like input) end the drain with
    /// the ring emptied and a <see cref="SysException"/>.
    /// </summary>
    public int Drain(CoalescedWriteHandler handler)
    {
        int taken = 0;
        lock (_gate)
        {
            uint first = Volatile.Read(ref First);
            // Acquire: an entry's fields are read only after the index that published it.
            uint last = Volatile.Read(ref Last);
            while (first != last)
            {
                if (first >= Capacity || last >= Capacity)
                {
                    Volatile.Write(ref First, last < Capacity ? last : 0);
                    throw new SysException($"the coalesced ring holds indices {first} and {last} past its {Capacity} entries", Libc.EINVAL);
                }
                // first < Capacity, so the entry lies inside the page.
                byte* entry = _page + HeaderSize + first * EntrySize;
                ulong address = *(ulong*)entry;
                uint length = *(uint*)(entry + 8);
                bool pio = *(uint*)(entry + 12) != 0;
                if (length == 0 || length > MaxDataLength)
                {
                    Volatile.Write(ref First, last);
                    throw new SysException($"the coalesced ring holds a write of {length} bytes at 0x{address:x}", Libc.EINVAL);
                }
                // The data field is 8 bytes inside the entry and length <= 8.
                handler(address, pio, new ReadOnlySpan<byte>(entry + DataOffset, (int)length));
                first = first + 1 == Capacity ? 0 : first + 1;
                // Release: KVM may reuse the entry only after the handler is done with it.
                Volatile.Write(ref First, first);
                taken++;
                if (first == last) last = Volatile.Read(ref Last);
            }
            Taken += taken;
        }
        return taken;
    }

    public void Dispose()
    {
        if (_page == null) return;
        // The page was mapped by KvmVcpu.MapCoalescedRing with _pageSize bytes; nothing drains after Dispose.
        if (_owned) Libc.Munmap(_page, (nuint)_pageSize);
        _page = null;
    }
}
