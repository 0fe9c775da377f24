using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>A page-aligned range of addresses, [Start, End).</summary>
public readonly record struct PageRange(ulong Start, ulong End)
{
    public ulong Length => End - Start;
}

/// <summary>
/// Gives back, once start-up has settled, the resident pages of code and constant data that start-up touched: the
/// read-only segments of the executable and of the shared objects it loaded (libc, libm, the loader). Those pages are
/// private file mappings, so MADV_DONTNEED only drops them from this process; whatever runs later faults its pages
/// back in from the page cache. Pages shared with a writable segment or with the relocation-protected (RELRO) part
/// are left alone, since the process wrote to them, and so is any other page the process holds its own copy of.
/// </summary>
public static unsafe class StartupPages
{
    private const ulong PageSize = 4096;

    /// <summary>The pages that may be given back once start-up has settled, with /proc/self/pagemap opened now,
    /// before the seccomp filters go on: which of them the process holds its own copy of is read at the release
    /// (<see cref="StartupPageRelease.StillFilePages"/>), so that a page written in between is kept. Only the NativeAOT
    /// executable has any: the JIT runtime (the tests' host) writes into its own code pages, which are then no longer
    /// the file's. Without /proc (as under ozone) nothing can be checked, and nothing is given back.</summary>
    public static StartupPageRelease Prepare()
    {
        if (RuntimeFeature.IsDynamicCodeSupported) return new([], null);
        var ranges = new List<PageRange>();
        var handle = GCHandle.Alloc(ranges);
        try
        {
            // The callback runs on this thread, inside the call, and only reads the headers libc hands it; the
            // handle keeps the list alive and in reach for the callback.
            Libc.DlIteratePhdr(&Collect, (void*)GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
        try { return new(ranges, HostFile.OpenRead("/proc/self/pagemap")); }
        catch (SysException) { return new([], null); }
    }

    /// <summary>Drops the pages of <paramref name="ranges"/> from this process; returns the bytes advised.</summary>
    public static ulong Release(List<PageRange> ranges)
    {
        ulong released = 0;
        foreach (var range in ranges)
        {
            // StillFilePages left only pages of read-only, file-backed segments that still hold the file's contents:
            // dropping them loses nothing.
            if (Libc.Madvise((void*)range.Start, (nuint)range.Length, Libc.MADV_DONTNEED) == 0) released += range.Length;
        }
        return released;
    }

    /// <summary>
    /// <paramref name="ranges"/> without the pages this process holds its own copy of: a read-only segment can still
    /// have been written after an mprotect. The NativeAOT runtime keeps its stack-cookie (__security_cookie) in
    /// .rodata and writes a random one at start; MADV_DONTNEED on that page would bring back the file's zero, and
    /// every frame entered before the release and left after it would fail its cookie check (a silent abort).
    /// A page is kept when its pagemap entry says present and not file-backed, or swapped.
    /// </summary>
    public static List<PageRange> WithoutOwnCopies(List<PageRange> ranges, HostFile pagemap)
    {
        const ulong Present = 1ul << 63, Swapped = 1ul << 62, FilePage = 1ul << 61;
        var result = new List<PageRange>();
        Span<ulong> entries = stackalloc ulong[512];
        foreach (var range in ranges)
        {
            ulong runStart = range.Start;
            for (ulong page = range.Start; page < range.End;)
            {
                int count = (int)Math.Min((ulong)entries.Length, (range.End - page) / PageSize);
                var bytes = MemoryMarshal.AsBytes(entries[..count]);
                if (!pagemap.ReadExactly(bytes, (long)(page / PageSize * 8)))
                    throw new SysException($"/proc/self/pagemap ends before {page:x}", Libc.EIO);
                for (int i = 0; i < count; i++, page += PageSize)
                {
                    ulong e = entries[i];
                    bool own = (e & Swapped) != 0 || ((e & Present) != 0 && (e & FilePage) == 0);
                    if (!own) continue;
                    if (page > runStart) result.Add(new PageRange(runStart, page));
                    runStart = page + PageSize;
                }
            }
            if (range.End > runStart) result.Add(new PageRange(runStart, range.End));
        }
        return result;
    }

    [UnmanagedCallersOnly]
    private static int Collect(DlPhdrInfo* info, nuint size, void* data)
    {
        var ranges = (List<PageRange>)GCHandle.FromIntPtr((nint)data).Target!;
        // The main program comes first with an empty name; the vDSO has a name without a path and is not a file.
        byte* name = info->Name;
        bool file = name == null || name[0] == 0 || name[0] == (byte)'/';
        if (file && info->Headers != null)
            ReadOnlyRanges(info->Address, new ReadOnlySpan<ElfProgramHeader>(info->Headers, info->HeaderCount), ranges);
        return 0;
    }

    /// <summary>Adds to <paramref name="ranges"/> the whole pages of the object loaded at <paramref name="loadBase"/>
    /// that belong to read-only PT_LOAD segments and to no writable segment or RELRO region.</summary>
    public static void ReadOnlyRanges(ulong loadBase, ReadOnlySpan<ElfProgramHeader> headers, List<PageRange> ranges)
    {
        foreach (var h in headers)
        {
            if (h.Type != Libc.PT_LOAD || (h.Flags & Libc.PF_W) != 0 || h.MemorySize == 0) continue;
            var pieces = new List<PageRange> { Pages(loadBase, h) };
            foreach (var other in headers)
            {
                bool written = (other.Type == Libc.PT_LOAD && (other.Flags & Libc.PF_W) != 0) || other.Type == Libc.PT_GNU_RELRO;
                if (!written || other.MemorySize == 0) continue;
                var cut = Pages(loadBase, other);
                for (int i = pieces.Count - 1; i >= 0; i--)
                {
                    var p = pieces[i];
                    if (cut.End <= p.Start || cut.Start >= p.End) continue;
                    pieces.RemoveAt(i);
                    if (p.Start < cut.Start) pieces.Add(new PageRange(p.Start, cut.Start));
                    if (cut.End < p.End) pieces.Add(new PageRange(cut.End, p.End));
                }
            }
            foreach (var p in pieces) if (p.Length > 0) ranges.Add(p);
        }
    }

    private static PageRange Pages(ulong loadBase, in ElfProgramHeader h)
    {
        ulong start = loadBase + h.VirtualAddress;
        return new PageRange(start & ~(PageSize - 1), (start + h.MemorySize + PageSize - 1) & ~(PageSize - 1));
    }
}

/// <summary>
/// The start-up pages to give back (<see cref="StartupPages.Prepare"/>) and the pagemap that tells, at the release,
/// which of them still hold only the file's contents.
/// </summary>
public sealed class StartupPageRelease(List<PageRange> candidates, HostFile? pagemap) : IDisposable
{
    private HostFile? _pagemap = pagemap;

    /// <summary>The candidates without the pages the process holds its own copy of now; empty when the pagemap
    /// cannot be read. Reads the pagemap once and closes it.</summary>
    public List<PageRange> StillFilePages()
    {
        if (_pagemap is null) return [];
        try { return StartupPages.WithoutOwnCopies(candidates, _pagemap); }
        catch (SysException) { return []; }
        finally { Dispose(); }
    }

    public void Dispose()
    {
        _pagemap?.Dispose();
        _pagemap = null;
    }
}
