using System.Buffers.Binary;
using System.Runtime.InteropServices;
using StratoVirt.Sys;

namespace StratoVirt.Memory;

/// <summary>
/// Guest RAM as a set of regions. Every access takes a guest physical address and a length and is checked
/// against the regions; an access never spans two regions.
/// </summary>
public sealed unsafe class GuestMemory : IDisposable
{
    private readonly GuestRegion[] _regions;
    private readonly RamFile? _file;

    /// <param name="dumpable">false keeps guest RAM out of the VMM's core dumps.</param>
    public GuestMemory(IEnumerable<(ulong Address, ulong Size)> layout, bool dumpable = true)
        : this(layout, RamBacking.Default with { Dumpable = dumpable })
    {
    }

    /// <summary>Guest RAM in <paramref name="layout"/>'s regions, backed as <paramref name="backing"/> says: a file
    /// backing holds the regions one after the other from offset 0. On failure nothing is left.</summary>
    public GuestMemory(IEnumerable<(ulong Address, ulong Size)> layout, RamBacking backing)
    {
        // By address; two regions at one address overlap in either order (a region cannot be empty).
        var ordered = new List<(ulong Address, ulong Size)>(layout);
        ordered.Sort((a, b) => a.Address.CompareTo(b.Address));
        if (backing.Kind == RamBackingKind.Anonymous && backing.Shared)
            throw new ArgumentException("anonymous guest RAM is private; shared RAM needs a memfd or a file");
        if (backing.Kind == RamBackingKind.Snapshot && backing.Shared)
            throw new ArgumentException("a snapshot's memory file is mapped private; its pages are shared until written");
        var regions = new List<GuestRegion>();
        try
        {
            if (backing.Kind != RamBackingKind.Anonymous)
            {
                ulong fileSize = 0;
                foreach (var r in ordered) fileSize += r.Size;
                _file = RamFile.Create(backing, fileSize);
            }
            ulong offset = 0;
            foreach (var (address, size) in ordered)
            {
                if (regions.Count > 0 && address < regions[^1].End)
                    throw new ArgumentException($"guest memory region 0x{address:x} overlaps its neighbour");
                regions.Add(new GuestRegion(address, size, _file, offset, backing.Shared, backing.Dumpable));
                offset += size;
            }
            if (backing.Prealloc) RamPrealloc.Populate(regions, PageSizeOf(_file));
        }
        catch
        {
            foreach (var r in regions) r.Dispose();
            _file?.Dispose();
            throw;
        }
        _regions = regions.ToArray();
        Backing = backing;
    }

    /// <summary>How this RAM is backed.</summary>
    public RamBacking Backing { get; }

    /// <summary>The host page size behind guest RAM: the unit in which it can be given back (2 MiB or 1 GiB on
    /// hugetlbfs).</summary>
    public ulong PageSize => PageSizeOf(_file);

    private static ulong PageSizeOf(RamFile? file) => file?.PageSize ?? (ulong)Environment.SystemPageSize;

    public IReadOnlyList<GuestRegion> Regions => _regions;

    /// <summary>Each region's guest address and size, in address order: the layout the e820 map and a snapshot
    /// describe.</summary>
    public (ulong Address, ulong Size)[] Layout
    {
        get
        {
            var layout = new (ulong Address, ulong Size)[_regions.Length];
            for (int i = 0; i < layout.Length; i++) layout[i] = (_regions[i].GuestAddress, _regions[i].Size);
            return layout;
        }
    }

    public ulong TotalSize => SizeOf(_regions);

    internal static ulong SizeOf(IReadOnlyList<GuestRegion> regions)
    {
        ulong sum = 0;
        foreach (var r in regions) sum += r.Size;
        return sum;
    }

    /// <summary>Host memory backing [address, address+length), or a GuestMemoryException.</summary>
    public Span<byte> GetSpan(ulong address, ulong length)
    {
        if (TryGetSpan(address, length, out var span)) return span;
        throw new GuestMemoryException(address, length);
    }

    /// <summary>Like GetSpan, without throwing: the path for guest-supplied addresses.</summary>
    public bool TryGetSpan(ulong address, ulong length, out Span<byte> span)
    {
        if (length <= int.MaxValue)
        {
            foreach (var r in _regions)
            {
                if (r.Contains(address, length))
                {
                    // Contains() proved [address, address+length) lies inside this live mapping.
                    span = new Span<byte>((byte*)r.HostAddress + (address - r.GuestAddress), (int)length);
                    return true;
                }
            }
        }
        span = default;
        return false;
    }

    public bool Contains(ulong address, ulong length) => TryGetSpan(address, length, out _);

    /// <summary>The host address of [address, address+length) when it lies inside one region (for iovecs and
    /// madvise); false otherwise.</summary>
    public bool TryGetHostAddress(ulong address, ulong length, out nint host)
    {
        foreach (var r in _regions)
        {
            if (r.Contains(address, length))
            {
                host = r.HostAddress + (nint)(address - r.GuestAddress);
                return true;
            }
        }
        host = 0;
        return false;
    }

    /// <summary>[address, address+length) as an iovec for vectored I/O, when it lies inside one region; false
    /// otherwise. The iovec stays valid while this memory is.</summary>
    public bool TryGetIovec(ulong address, ulong length, out Iovec iovec)
    {
        bool inside = TryGetHostAddress(address, length, out nint host);
        iovec = new Iovec { Base = host, Length = inside ? (nuint)length : 0 };
        return inside;
    }

    /// <summary>
    /// Gives [address, address+length) back to the host; the guest's next access finds zeros (or, in a private
    /// mapping of a file, the file's bytes). Private memory is dropped with madvise(MADV_DONTNEED); shared memory
    /// has the file's blocks freed (FALLOC_FL_PUNCH_HOLE), since MADV_DONTNEED would only unmap pages the file keeps.
    /// The range must be guest RAM (it may run over adjacent regions) and aligned to <see cref="PageSize"/>, as
    /// regions are. Returns 0 or the errno.
    /// </summary>
    public int Discard(ulong address, ulong length)
    {
        while (length > 0)
        {
            var region = RegionAt(address) ?? throw new GuestMemoryException(address, length);
            ulong part = Math.Min(length, region.End - address);
            ulong offset = address - region.GuestAddress;
            int errno = region.Shared
                ? region.File!.PunchHole(region.FileOffset + offset, part)
                // [address, address+part) lies inside this region's live mapping (checked just above).
                : Libc.Madvise((byte*)region.HostAddress + offset, (nuint)part, Libc.MADV_DONTNEED) != 0
                    ? Marshal.GetLastPInvokeError()
                    : 0;
            if (errno != 0) return errno;
            address += part;
            length -= part;
        }
        return 0;
    }

    private GuestRegion? RegionAt(ulong address)
    {
        foreach (var r in _regions)
            if (r.Contains(address, 1)) return r;
        return null;
    }

    public void Read(ulong address, Span<byte> destination) =>
        GetSpan(address, (ulong)destination.Length).CopyTo(destination);

    public void Write(ulong address, ReadOnlySpan<byte> source) =>
        source.CopyTo(GetSpan(address, (ulong)source.Length));

    public byte ReadByte(ulong address) => GetSpan(address, 1)[0];
    public ushort ReadUInt16(ulong address) => BinaryPrimitives.ReadUInt16LittleEndian(GetSpan(address, 2));
    public uint ReadUInt32(ulong address) => BinaryPrimitives.ReadUInt32LittleEndian(GetSpan(address, 4));
    public ulong ReadUInt64(ulong address) => BinaryPrimitives.ReadUInt64LittleEndian(GetSpan(address, 8));

    public void WriteByte(ulong address, byte value) => GetSpan(address, 1)[0] = value;
    public void WriteUInt16(ulong address, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(GetSpan(address, 2), value);
    public void WriteUInt32(ulong address, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(GetSpan(address, 4), value);
    public void WriteUInt64(ulong address, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(GetSpan(address, 8), value);

    public void Dispose()
    {
        foreach (var r in _regions) r.Dispose();
        _file?.Dispose();
    }
}
