using System.Buffers.Binary;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Unit;

/// <summary>Which pages the start-up release may drop: whole pages of read-only segments that no writable segment
/// or RELRO region touches, on synthetic layouts and on the host's real shared objects.</summary>
[Trait("Level", "Unit")]
public sealed unsafe class StartupPagesTests
{
    private static ElfProgramHeader Load(ulong vaddr, ulong size, bool writable = false, bool exec = false) => new()
    {
        Type = Libc.PT_LOAD,
        Flags = 4u | (writable ? Libc.PF_W : 0) | (exec ? 1u : 0),
        VirtualAddress = vaddr,
        MemorySize = size,
        FileSize = size,
    };

    private static ElfProgramHeader Relro(ulong vaddr, ulong size) =>
        new() { Type = Libc.PT_GNU_RELRO, Flags = 4, VirtualAddress = vaddr, MemorySize = size };

    private static List<PageRange> Ranges(ulong loadBase, params ElfProgramHeader[] headers)
    {
        var ranges = new List<PageRange>();
        StartupPages.ReadOnlyRanges(loadBase, headers, ranges);
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        return ranges;
    }

    [Fact]
    public void NonPieExecutableKeepsItsWritablePages()
    {
        var ranges = Ranges(0,
            Load(0x400000, 0x1000), Load(0x401000, 0x5000, exec: true), Load(0x406000, 0x2000),
            Load(0x408e10, 0x300, writable: true), Relro(0x408e10, 0x1f0));
        Assert.Equal([new PageRange(0x400000, 0x401000), new PageRange(0x401000, 0x406000), new PageRange(0x406000, 0x408000)], ranges);
    }

    [Fact]
    public void PieAddsTheLoadBaseAndRoundsOutwardToPages()
    {
        var ranges = Ranges(0x7f0000000000, Load(0, 0x834), Load(0x1000, 0x2345, exec: true));
        Assert.Equal([new PageRange(0x7f0000000000, 0x7f0000001000), new PageRange(0x7f0000001000, 0x7f0000004000)], ranges);
    }

    [Fact]
    public void APageSharedWithAWritableSegmentIsKept()
    {
        // The read-only segment ends in the page where the writable one starts.
        var ranges = Ranges(0, Load(0x1000, 0x1800), Load(0x2900, 0x100, writable: true));
        Assert.Equal([new PageRange(0x1000, 0x2000)], ranges);
    }

    [Fact]
    public void RelroInsideAReadOnlySegmentSplitsIt()
    {
        var ranges = Ranges(0, Load(0, 0x5000), Relro(0x2000, 0x800));
        Assert.Equal([new PageRange(0, 0x2000), new PageRange(0x3000, 0x5000)], ranges);
    }

    [Fact]
    public void EmptyAndWritableOnlyObjectsGiveNothing()
    {
        Assert.Empty(Ranges(0, Load(0x1000, 0), Load(0x2000, 0x1000, writable: true)));
        Assert.Empty(Ranges(0, Load(0x1000, 0x1000), Load(0x1000, 0x1000, writable: true)));
    }

    /// <summary>The host's libc, libm and loader: every range is page-aligned, inside a read-only PT_LOAD, clear of
    /// every writable or RELRO page, and the code segment is among them.</summary>
    [Theory]
    [InlineData("/lib/x86_64-linux-gnu/libc.so.6")]
    [InlineData("/lib/x86_64-linux-gnu/libm.so.6")]
    [InlineData("/lib64/ld-linux-x86-64.so.2")]
    public void RealSharedObjectsGiveOnlyReadOnlyPages(string path)
    {
        var headers = ReadProgramHeaders(File.ReadAllBytes(path));
        const ulong loadBase = 0x7f1234560000;
        var ranges = Ranges(loadBase, headers);
        Assert.NotEmpty(ranges);
        var code = headers.Single(h => h.Type == Libc.PT_LOAD && (h.Flags & 1) != 0);
        Assert.Contains(ranges, r => r.Start <= loadBase + code.VirtualAddress + 0x1000 && loadBase + code.VirtualAddress + 0x1000 < r.End);
        foreach (var r in ranges)
        {
            Assert.Equal(0ul, r.Start % 4096);
            Assert.Equal(0ul, r.End % 4096);
            Assert.Contains(headers, h => h.Type == Libc.PT_LOAD && (h.Flags & Libc.PF_W) == 0 &&
                                          loadBase + h.VirtualAddress < r.End + 4096 && r.Start < loadBase + h.VirtualAddress + h.MemorySize);
            foreach (var h in headers.Where(h => (h.Type == Libc.PT_LOAD && (h.Flags & Libc.PF_W) != 0) || h.Type == Libc.PT_GNU_RELRO))
            {
                ulong start = (loadBase + h.VirtualAddress) & ~4095ul;
                ulong end = (loadBase + h.VirtualAddress + h.MemorySize + 4095) & ~4095ul;
                Assert.True(r.End <= start || r.Start >= end, $"{path}: {r} overlaps a written segment [{start:x}, {end:x})");
            }
        }
    }

    [Fact]
    public void TheJitHostReleasesNothing()
    {
        // The tests run on the JIT runtime, which patches its own code pages: the release is for the NativeAOT binary.
        using var release = StartupPages.Prepare();
        Assert.Empty(release.StillFilePages());
    }

    [Fact]
    public void APageWrittenInAReadOnlyMappingIsKeptThroughTheRelease()
    {
        // As the NativeAOT runtime does with its stack cookie in .rodata: mprotect a page of a read-only private
        // file mapping writable, write it, protect it again. Dropping that page would bring the file's byte back.
        const int Page = 4096;
        string path = Path.Combine(Path.GetTempPath(), $"startup-pages-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, Enumerable.Repeat((byte)0xA5, 3 * Page).ToArray());
        try
        {
            using var fd = FileDescriptor.Open(path, Libc.O_RDONLY);
            byte* map = (byte*)Libc.Mmap(null, 3 * Page, Libc.PROT_READ, Libc.MAP_PRIVATE, fd.Fd, 0);
            Assert.NotEqual(-1, (nint)map);
            try
            {
                Assert.Equal(0xA5, Volatile.Read(ref map[0]));
                Assert.Equal(0xA5, Volatile.Read(ref map[2 * Page]));
                Assert.Equal(0, Libc.Mprotect(map + Page, Page, Libc.PROT_READ | Libc.PROT_WRITE));
                Volatile.Write(ref map[Page], 0x5A);
                Assert.Equal(0, Libc.Mprotect(map + Page, Page, Libc.PROT_READ));

                ulong start = (ulong)map;
                using var pagemap = HostFile.OpenRead("/proc/self/pagemap");
                var kept = StartupPages.WithoutOwnCopies([new PageRange(start, start + 3 * Page)], pagemap);
                Assert.Equal([new PageRange(start, start + Page), new PageRange(start + 2 * Page, start + 3 * Page)], kept);

                // Prepared before the third page is written, checked after: the written page is kept too, and the
                // check closes the pagemap it was given.
                var release = new StartupPageRelease([new PageRange(start, start + 3 * Page)], HostFile.OpenRead("/proc/self/pagemap"));
                Assert.Equal(0, Libc.Mprotect(map + 2 * Page, Page, Libc.PROT_READ | Libc.PROT_WRITE));
                Volatile.Write(ref map[2 * Page], 0x3C);
                Assert.Equal(0, Libc.Mprotect(map + 2 * Page, Page, Libc.PROT_READ));
                Assert.Equal([new PageRange(start, start + Page)], release.StillFilePages());
                Assert.Empty(release.StillFilePages());
                kept = [new PageRange(start, start + Page)];

                Assert.Equal(1ul * Page, StartupPages.Release(kept));
                Assert.Equal(0x5A, Volatile.Read(ref map[Page]));
                Assert.Equal(0x3C, Volatile.Read(ref map[2 * Page]));
                Assert.Equal(0xA5, Volatile.Read(ref map[0]));
            }
            finally
            {
                Libc.Munmap(map, 3 * Page);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static ElfProgramHeader[] ReadProgramHeaders(byte[] elf)
    {
        Assert.Equal(0x464c457fu, BinaryPrimitives.ReadUInt32LittleEndian(elf));
        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(32));
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(54));
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(56));
        var headers = new ElfProgramHeader[phnum];
        for (int i = 0; i < phnum; i++)
        {
            var p = elf.AsSpan((int)phoff + i * phentsize);
            headers[i] = new ElfProgramHeader
            {
                Type = BinaryPrimitives.ReadUInt32LittleEndian(p),
                Flags = BinaryPrimitives.ReadUInt32LittleEndian(p[4..]),
                Offset = BinaryPrimitives.ReadUInt64LittleEndian(p[8..]),
                VirtualAddress = BinaryPrimitives.ReadUInt64LittleEndian(p[16..]),
                PhysicalAddress = BinaryPrimitives.ReadUInt64LittleEndian(p[24..]),
                FileSize = BinaryPrimitives.ReadUInt64LittleEndian(p[32..]),
                MemorySize = BinaryPrimitives.ReadUInt64LittleEndian(p[40..]),
                Align = BinaryPrimitives.ReadUInt64LittleEndian(p[48..]),
            };
        }
        return headers;
    }
}
