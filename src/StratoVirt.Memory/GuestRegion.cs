using StratoVirt.Sys;

namespace StratoVirt.Memory;

/// <summary>One contiguous block of guest RAM backed by an anonymous private host mapping.</summary>
public sealed unsafe class GuestRegion : IDisposable
{
    private readonly bool _dumpable;

    public ulong GuestAddress { get; }
    public ulong Size { get; }
    public nint HostAddress { get; private set; }

    /// <param name="dumpable">false keeps the region out of the VMM's core dumps (MADV_DONTDUMP), as
    /// -machine dump-guest-core=off asks.</param>
    public GuestRegion(ulong guestAddress, ulong size, bool dumpable = true)
    {
        GuestAddress = guestAddress;
        Size = size;
        _dumpable = dumpable;
        // MAP_NORESERVE: guest RAM is committed page by page as the guest touches it.
        void* p = Libc.Mmap(null, (nuint)size, Libc.PROT_READ | Libc.PROT_WRITE,
            Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0);
        if (p == (void*)-1) throw SysException.Last($"mmap of {size >> 20} MiB guest RAM");
        HostAddress = (nint)p;
        if (!dumpable && Libc.Madvise(p, (nuint)size, Libc.MADV_DONTDUMP) != 0)
        {
            var error = SysException.Last($"madvise(MADV_DONTDUMP) of {size >> 20} MiB guest RAM");
            Dispose();
            throw error;
        }
    }

    public ulong End => GuestAddress + Size;

    /// <summary>
    /// Replaces the region's pages, at the same host address, with a private copy-on-write mapping of
    /// <paramref name="fd"/> from <paramref name="offset"/> (a snapshot's memory file): the guest reads the file's
    /// pages, shared with every other mapping of it, and its writes stay in this process.
    /// </summary>
    public void MapFilePrivately(int fd, long offset)
    {
        // MAP_FIXED replaces exactly this region's own mapping, which nothing else uses yet.
        void* p = Libc.Mmap((void*)HostAddress, (nuint)Size, Libc.PROT_READ | Libc.PROT_WRITE,
            Libc.MAP_PRIVATE | Libc.MAP_FIXED | Libc.MAP_NORESERVE, fd, offset);
        if (p == (void*)-1) throw SysException.Last($"mmap of {Size >> 20} MiB of the memory file at offset {offset}");
        if (!_dumpable && Libc.Madvise(p, (nuint)Size, Libc.MADV_DONTDUMP) != 0)
            throw SysException.Last($"madvise(MADV_DONTDUMP) of {Size >> 20} MiB guest RAM");
    }

    public bool Contains(ulong address, ulong length) =>
        address >= GuestAddress && length <= Size && address - GuestAddress <= Size - length;

    public void Dispose()
    {
        if (HostAddress != 0)
        {
            // The mapping was created by this object and is released only here.
            Libc.Munmap((void*)HostAddress, (nuint)Size);
            HostAddress = 0;
        }
    }
}
