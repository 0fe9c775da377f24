using System.Runtime.InteropServices;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Unit;

/// <summary>Guest RAM on a real memfd and on real files: what each region reports for sharing it (fd, offset, size,
/// host and guest address), that another mapping of the fd sees the guest's bytes, hole punching, prealloc.</summary>
[Trait("Level", "Unit")]
public sealed unsafe class SharedMemoryTests : IDisposable
{
    private static readonly (ulong, ulong)[] TwoRegions = [(0, 0x200000), (0x1000_0000, 0x100000)];
    private readonly string _folder = Directory.CreateTempSubdirectory("shmem-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static readonly RamBacking SharedMemfd = new() { Kind = RamBackingKind.Memfd, Shared = true };

    [Fact]
    public void MemfdRegionsReportTheFdAndConsecutiveOffsets()
    {
        using var m = new GuestMemory(TwoRegions, SharedMemfd);
        var (low, high) = (m.Regions[0], m.Regions[1]);
        Assert.NotNull(low.File);
        Assert.Same(low.File, high.File);
        Assert.True(low.File!.Fd > 2);
        Assert.Equal((0UL, 0x200000UL, 0UL, true), (low.GuestAddress, low.Size, low.FileOffset, low.Shared));
        Assert.Equal((0x1000_0000UL, 0x100000UL, 0x200000UL, true), (high.GuestAddress, high.Size, high.FileOffset, high.Shared));
        Assert.NotEqual(0, low.HostAddress);
        Assert.Equal(0x300000L, Status(low.File.Fd).Size);
        Assert.Equal((ulong)Environment.SystemPageSize, m.PageSize);
        // The seals keep a process the fd is sent to from cutting the VMM's mappings short.
        Assert.NotEqual(0, Libc.Ftruncate(low.File.Fd, 0x1000));
        Assert.Equal(Libc.EPERM, Marshal.GetLastPInvokeError());
    }

    [Fact]
    public void AnotherMappingOfTheFdSeesWhatTheGuestWrites()
    {
        using var m = new GuestMemory(TwoRegions, SharedMemfd);
        m.WriteUInt64(0x1000_0000 + 0x10, 0x0123456789abcdef);
        var high = m.Regions[1];
        void* other = Libc.Mmap(null, (nuint)high.Size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, high.File!.Fd, (long)high.FileOffset);
        Assert.NotEqual((nint)(-1), (nint)other);
        try
        {
            Assert.Equal(0x0123456789abcdefUL, *(ulong*)((byte*)other + 0x10));
            *(uint*)other = 0xfeedface; // and the other way round
            Assert.Equal(0xfeedfaceu, m.ReadUInt32(0x1000_0000));
        }
        finally
        {
            Libc.Munmap(other, (nuint)high.Size);
        }
    }

    [Fact]
    public void AnonymousRegionsHaveNoFile()
    {
        using var m = new GuestMemory(TwoRegions);
        Assert.All(m.Regions, r => Assert.Equal((null, false), (r.File, r.Shared)));
        Assert.Throws<ArgumentException>(() => new GuestMemory(TwoRegions, RamBacking.Default with { Shared = true }));
    }

    [Fact]
    public void DiscardPunchesAHoleInTheMemfdThatFreesItsBlocks()
    {
        using var m = new GuestMemory(TwoRegions, SharedMemfd);
        var region = m.Regions[0];
        m.GetSpan(0, region.Size).Fill(0xA5);
        long before = Status(region.File!.Fd).Blocks;
        Assert.Equal(0, m.Discard(0x100000, 0x100000));
        long after = Status(region.File.Fd).Blocks;
        // st_blocks counts 512-byte units: 1 MiB is 2048 of them.
        Assert.Equal(2048, before - after);
        Assert.True(m.GetSpan(0x100000, 0x100000).IndexOfAnyExcept((byte)0) < 0, "the released range must read zeros");
        Assert.True(m.GetSpan(0, 0x100000).IndexOfAnyExcept((byte)0xA5) < 0, "the range before it must be intact");
    }

    [Fact]
    public void DiscardOfPrivateRamDropsItsPagesAndReadsZeros()
    {
        using var m = new GuestMemory(TwoRegions);
        m.GetSpan(0, 0x200000).Fill(0x5A);
        Assert.Equal(0, m.Discard(0, 0x100000));
        Assert.Equal(0x100000, Resident(m.Regions[0].HostAddress, 0x200000) * Environment.SystemPageSize);
        Assert.True(m.GetSpan(0, 0x100000).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void PreallocFaultsInEveryPageBeforeTheGuestRuns()
    {
        using (var lazy = new GuestMemory(TwoRegions, SharedMemfd))
            Assert.Equal(0, Resident(lazy.Regions[0].HostAddress, lazy.Regions[0].Size));
        foreach (var backing in new[] { RamBacking.Default, SharedMemfd })
        {
            using var m = new GuestMemory(TwoRegions, backing with { Prealloc = true });
            foreach (var r in m.Regions)
                Assert.Equal((long)r.Size / Environment.SystemPageSize, Resident(r.HostAddress, r.Size));
        }
    }

    [Fact]
    public void AFolderGetsAnUnlinkedFileAndLeavesNothing()
    {
        using (var m = new GuestMemory(TwoRegions, new RamBacking { Kind = RamBackingKind.File, Path = _folder, Shared = true }))
        {
            Assert.Empty(Directory.GetFileSystemEntries(_folder));
            m.WriteUInt32(0x1000, 7);
            Assert.Equal(0x300000L, Status(m.Regions[0].File!.Fd).Size);
        }
        Assert.Empty(Directory.GetFileSystemEntries(_folder));
    }

    [Fact]
    public void ANamedSharedFileHoldsWhatTheGuestWroteAndAPrivateOneDoesNot()
    {
        string path = Path.Combine(_folder, "ram");
        using (var m = new GuestMemory(TwoRegions, new RamBacking { Kind = RamBackingKind.File, Path = path, Shared = true }))
            m.Write(0x1000_0000 + 4, "shared"u8);
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(0x300000, bytes.Length);
        Assert.Equal("shared"u8.ToArray(), bytes[0x200004..0x20000a]);

        using (var m = new GuestMemory(TwoRegions, new RamBacking { Kind = RamBackingKind.File, Path = path }))
        {
            Assert.Equal("shared"u8.ToArray(), m.GetSpan(0x1000_0000 + 4, 6).ToArray()); // the file's bytes show through
            m.Write(0x1000_0000 + 4, "privat"u8);
            Assert.Equal(0, m.Discard(0x1000_0000, 0x1000)); // a private copy is dropped: the file shows again
            Assert.Equal("shared"u8.ToArray(), m.GetSpan(0x1000_0000 + 4, 6).ToArray());
        }
        Assert.Equal("shared"u8.ToArray(), File.ReadAllBytes(path)[0x200004..0x20000a]);
    }

    [Fact]
    public void AMissingFolderIsOneLineAndCreatesNothing()
    {
        string missing = Path.Combine(_folder, "no", "such");
        var e = Assert.Throws<SysException>(() =>
            new GuestMemory(TwoRegions, new RamBacking { Kind = RamBackingKind.File, Path = missing }));
        Assert.Equal($"creating the guest RAM file {missing}: No such file or directory (errno 2)", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(_folder));
    }

    private static Stat Status(int fd)
    {
        Stat st;
        Assert.Equal(0, Libc.FStat(fd, &st));
        return st;
    }

    /// <summary>How many host pages of [host, host+length) are resident (mincore).</summary>
    private static long Resident(nint host, ulong length)
    {
        var vector = new byte[length / (ulong)Environment.SystemPageSize];
        fixed (byte* v = vector) Assert.Equal(0, Libc.Mincore((void*)host, (nuint)length, v));
        return vector.Count(b => (b & 1) != 0);
    }
}
