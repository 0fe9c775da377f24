using StratoVirt.Sys;

namespace StratoVirt.Memory;

/// <summary>One contiguous block of guest RAM: an anonymous private host mapping, or a range of a
/// <see cref="RamFile"/> mapped shared or private.</summary>
public sealed unsafe class GuestRegion : IDisposable
{
    public ulong GuestAddress { get; }
    public ulong Size { get; }
    public nint HostAddress { get; private set; }

    /// <summary>The file behind the region, or null for anonymous memory. The region does not own it.</summary>
    public RamFile? File { get; }

    /// <summary>Where the region's first byte lies in <see cref="File"/>.</summary>
    public ulong FileOffset { get; }

    /// <summary>Mapped MAP_SHARED: what the guest writes is in the file, for every process that maps it.</summary>
    public bool Shared { get; }

    /// <param name="dumpable">false keeps the region out of the VMM's core dumps (MADV_DONTDUMP), as
    /// -machine dump-guest-core=off asks.</param>
    public GuestRegion(ulong guestAddress, ulong size, bool dumpable = true)
        : this(guestAddress, size, null, 0, shared: false, dumpable)
    {
    }

    /// <summary>A region backed by [fileOffset, fileOffset+size) of <paramref name="file"/> (anonymous private
    /// memory when it is null).</summary>
    public GuestRegion(ulong guestAddress, ulong size, RamFile? file, ulong fileOffset, bool shared, bool dumpable)
    {
        GuestAddress = guestAddress;
        Size = size;
        File = file;
        FileOffset = fileOffset;
        Shared = file is not null && shared;
        HostAddress = (nint)(file is null ? MapAnonymous(size) : file.Map(fileOffset, size, shared));
        if (!dumpable && Libc.Madvise((void*)HostAddress, (nuint)size, Libc.MADV_DONTDUMP) != 0)
        {
            var error = SysException.Last($"madvise(MADV_DONTDUMP) of {size >> 20} MiB guest RAM");
            Dispose();
            throw error;
        }
    }

    private static void* MapAnonymous(ulong size)
    {
        // MAP_NORESERVE: guest RAM is committed page by page as the guest touches it.
        void* p = Libc.Mmap(null, (nuint)size, Libc.PROT_READ | Libc.PROT_WRITE,
            Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0);
        if (p == (void*)-1) throw SysException.Last($"mmap of {size >> 20} MiB guest RAM");
        return p;
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
