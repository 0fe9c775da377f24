using StratoVirt.Sys;

namespace StratoVirt.Memory;

/// <summary>One contiguous block of guest RAM backed by an anonymous private host mapping.</summary>
public sealed unsafe class GuestRegion : IDisposable
{
    public ulong GuestAddress { get; }
    public ulong Size { get; }
    public nint HostAddress { get; private set; }

    /// <param name="dumpable">false keeps the region out of the VMM's core dumps (MADV_DONTDUMP), as
    /// -machine dump-guest-core=off asks.</param>
    public GuestRegion(ulong guestAddress, ulong size, bool dumpable = true)
    {
        GuestAddress = guestAddress;
        Size = size;
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
