using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using StratoVirt.Sys;
using StratoVirt.Virtio;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Transport.Mmio;

namespace StratoVirt.Tests.Virtio;

/// <summary>
/// Image locks belong to the open file, and a process another test forks (iasl, chattr, the VMM) holds a copy of
/// every fd until it execs: a drive closed in that window keeps its lock a moment longer. These tests, which reopen
/// images they have just closed, therefore run on their own, after the parallel ones.
/// </summary>
[CollectionDefinition(nameof(ImageLockCollection), DisableParallelization = true)]
public sealed class ImageLockCollection;

/// <summary>virtio-blk over real image files in a temporary folder, driven through the virtio-mmio registers.</summary>
[Trait("Level", "Unit")]
[Collection(nameof(ImageLockCollection))]
public sealed class VirtioBlockTests : IDisposable
{
    private const int Sector = VirtioBlock.SectorSize;
    private readonly TempDir _dir = new();
    private readonly List<IDisposable> _open = [];

    public void Dispose()
    {
        foreach (var d in _open) d.Dispose();
        _dir.Dispose();
    }

    // ---- set-up ----

    private string Image(int size, int seed = 0, string name = "disk.img") =>
        _dir.Write(name, seed == 0 ? new byte[size] : Pattern(size, seed));

    private static byte[] Pattern(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>A driver bound to a new drive on <paramref name="path"/>, accepting every feature offered but
    /// <paramref name="refuse"/>.</summary>
    private TestDriver Start(string path, bool readOnly = false, bool direct = false, string? serial = null,
        ulong refuse = 0)
    {
        var d = new TestDriver(new VirtioBlock(path, readOnly, direct, serial) { Id = "blk0" });
        _open.Add(d);
        Assert.NotEqual(0u, d.Initialize(d.DeviceFeatures() & ~refuse, queueSize: 64) & VirtioStatus.DriverOk);
        return d;
    }

    private static VirtioBlock Block(TestDriver d) => (VirtioBlock)d.Device;

    // ---- requests ----

    private sealed record Outcome(byte Status, uint Written, byte[] Data);

    internal static byte[] Header(uint type, ulong sector = 0)
    {
        var h = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), sector);
        return h;
    }

    private static byte[] Segments(params (ulong Sector, uint Count, uint Flags)[] segments)
    {
        var b = new byte[16 * segments.Length];
        for (int i = 0; i < segments.Length; i++)
        {
            var s = b.AsSpan(16 * i);
            BinaryPrimitives.WriteUInt64LittleEndian(s, segments[i].Sector);
            BinaryPrimitives.WriteUInt32LittleEndian(s[8..], segments[i].Count);
            BinaryPrimitives.WriteUInt32LittleEndian(s[12..], segments[i].Flags);
        }
        return b;
    }

    private static byte[][] Split(byte[] data, params int[] sizes)
    {
        if (sizes.Length == 0) return [data];
        Assert.Equal(data.Length, sizes.Sum());
        var parts = new byte[sizes.Length][];
        for (int i = 0, at = 0; i < sizes.Length; at += sizes[i], i++) parts[i] = data[at..(at + sizes[i])];
        return parts;
    }

    /// <summary>Places the buffers (device-readable ones first) and submits the chain, and returns the status byte
    /// (the last writable byte), the used length and the other writable bytes.</summary>
    private static Outcome Submit(TestDriver d, IReadOnlyList<byte[]> readable, IReadOnlyList<uint> writable,
        bool indirect = false, ulong alignment = 16)
    {
        var (head, parts) = Place(d, readable, writable, indirect, alignment);
        d.Notify(0);
        var c = Assert.Single(d.TakeUsed(0));
        Assert.Equal(head, c.Head);
        var bytes = parts.Where(p => p.Write).SelectMany(p => d.Memory.GetSpan(p.Addr, p.Len).ToArray()).ToArray();
        return bytes.Length == 0 ? new Outcome(0xFF, c.Written, []) : new Outcome(bytes[^1], c.Written, bytes[..^1]);
    }

    /// <summary>Places the buffers and makes the chain available, without notifying.</summary>
    private static (ushort Head, List<(ulong Addr, uint Len, bool Write)> Parts) Place(TestDriver d,
        IReadOnlyList<byte[]> readable, IReadOnlyList<uint> writable, bool indirect = false, ulong alignment = 16)
    {
        var parts = new List<(ulong Addr, uint Len, bool Write)>();
        foreach (var r in readable)
        {
            ulong a = d.Allocate((ulong)r.Length, alignment);
            d.Memory.Write(a, r);
            parts.Add((a, (uint)r.Length, false));
        }
        foreach (uint w in writable)
        {
            ulong a = d.Allocate(w, alignment);
            d.Memory.GetSpan(a, w).Fill(0xEE);
            parts.Add((a, w, true));
        }
        return (d.AddChain(0, parts, indirect), parts);
    }

    private static Outcome Write(TestDriver d, ulong sector, byte[] data, params int[] split) =>
        Submit(d, [Header(VirtioBlockRequest.Out, sector), .. Split(data, split)], [1]);

    private static Outcome Read(TestDriver d, ulong sector, int length, params int[] split) =>
        Submit(d, [Header(VirtioBlockRequest.In, sector)],
            [.. (split.Length == 0 ? [length] : split).Select(n => (uint)n), 1u]);

    private static Outcome Command(TestDriver d, uint type, byte[]? payload = null, uint writable = 1) =>
        Submit(d, payload is null ? [Header(type)] : [Header(type), payload], [writable]);

    private static void AssertOk(Outcome o) => Assert.Equal(VirtioBlockStatus.Ok, o.Status);

    // ---- configuration ----

    [Fact]
    public void ABlockDeviceDriveTakesItsSizeFromTheDevice()
    {
        // A loop device over a 3 MiB image (root, as the CI runs): fstat gives a block device no size, BLKGETSIZE64 does.
        string path = Image(3 << 20, seed: 5);
        var attach = VmmProcess.RunCommand("losetup", ["-f", "--show", path], TimeSpan.FromSeconds(20));
        Assert.True(attach.ExitCode == 0, attach.ToString());
        string device = attach.Stdout.Trim();
        try
        {
            using (var image = RawImage.Open(device, readOnly: true, direct: false))
                Assert.Equal(3UL << 20, image.Size);
            var d = Start(device, readOnly: true);
            Assert.Equal((ulong)(3 << 20) / Sector, BinaryPrimitives.ReadUInt64LittleEndian(d.ReadConfig(0, 8)));
        }
        finally
        {
            foreach (var o in _open) o.Dispose();
            _open.Clear();
            VmmProcess.RunCommand("losetup", ["-d", device], TimeSpan.FromSeconds(20));
        }
    }

    [Fact]
    public void ConfigSpaceDescribesTheImage()
    {
        var d = Start(Image(1024 * 1024 + 100));
        Assert.Equal(VirtioDeviceId.Block, d.ReadReg(VirtioMmioRegister.DeviceId));
        ulong f = d.DeviceFeatures();
        foreach (ulong bit in new[] { VirtioBlockFeature.SegMax, VirtioBlockFeature.BlkSize, VirtioBlockFeature.Flush,
                     VirtioBlockFeature.Discard, VirtioBlockFeature.WriteZeroes })
            Assert.NotEqual(0UL, f & bit);
        Assert.Equal(0UL, f & (VirtioBlockFeature.ReadOnly | VirtioBlockFeature.SizeMax));

        var c = d.ReadConfig(0, 60);
        Assert.Equal(2048UL, BinaryPrimitives.ReadUInt64LittleEndian(c)); // the 100-byte tail is not a sector
        Assert.Equal(254u, BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(12))); // seg_max = queue size - 2
        Assert.Equal(512u, BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(20))); // blk_size
        Assert.Equal(VirtioBlock.MaxRequestSectors, BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(36)));
        Assert.Equal((uint)VirtioBlock.MaxSegments, BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(40)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(44)));
        Assert.Equal(VirtioBlock.MaxRequestSectors, BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(48)));
        Assert.Equal((uint)VirtioBlock.MaxSegments, BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(52)));
        Assert.Equal(1, c[56]); // write_zeroes_may_unmap
        // A 4-byte read of the capacity's high half, and bytes past the end, as a driver may do them.
        Assert.Equal([0, 0, 0, 0], d.ReadConfig(4, 4));
        Assert.Equal([0, 0, 0, 0], d.ReadConfig(200, 4));
    }

    [Fact]
    public void AReadOnlyDriveOffersRoAndNeitherDiscardNorWriteZeroes()
    {
        var d = Start(Image(8 * Sector), readOnly: true);
        ulong f = d.DeviceFeatures();
        Assert.NotEqual(0UL, f & VirtioBlockFeature.ReadOnly);
        Assert.Equal(0UL, f & (VirtioBlockFeature.Discard | VirtioBlockFeature.WriteZeroes));
        Assert.Equal(8UL, Block(d).Capacity);
        Assert.All(d.ReadConfig(36, 24), b => Assert.Equal(0, b));
    }

    // ---- read and write ----

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WritesAndReadsRoundTripAcrossBuffers(bool indirect)
    {
        string path = Image(64 * Sector);
        var d = Start(path);
        var data = Pattern(3 * Sector, 7);
        var w = Submit(d, [Header(VirtioBlockRequest.Out, 3), .. Split(data, 100, 924, 512)], [1], indirect);
        AssertOk(w);
        Assert.Equal(1u, w.Written);

        var file = File.ReadAllBytes(path);
        Assert.Equal(data, file[(3 * Sector)..(6 * Sector)]);
        Assert.All(file[..(3 * Sector)], b => Assert.Equal(0, b));
        Assert.All(file[(6 * Sector)..], b => Assert.Equal(0, b));

        var r = Submit(d, [Header(VirtioBlockRequest.In, 3)], [512, 1000, 24, 1], indirect);
        AssertOk(r);
        Assert.Equal(3u * Sector + 1, r.Written);
        Assert.Equal(data, r.Data);
    }

    [Fact]
    public void HeaderDataAndStatusMayShareBuffers()
    {
        string path = Image(16 * Sector, seed: 3);
        var d = Start(path);
        var data = Pattern(2 * Sector, 9);
        // Header and data in one readable buffer; the data read and the status in one writable buffer.
        AssertOk(Submit(d, [[.. Header(VirtioBlockRequest.Out, 5), .. data]], [1]));
        var r = Submit(d, [Header(VirtioBlockRequest.In, 5)], [2 * Sector + 1]);
        AssertOk(r);
        Assert.Equal(2u * Sector + 1, r.Written);
        Assert.Equal(data, r.Data);
        Assert.Equal(data, File.ReadAllBytes(path)[(5 * Sector)..(7 * Sector)]);
    }

    [Fact]
    public void DirectIoServesAlignedAndUnalignedGuestBuffers()
    {
        string path = Image(64 * Sector);
        var d = Start(path, direct: true);
        // O_DIRECT is used wherever the filesystem has it (ext4 and xfs do, tmpfs does not).
        int probe = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECT, 0);
        if (probe >= 0) Libc.Close(probe);
        Assert.Equal(probe >= 0, Block(d).Direct);

        var aligned = Pattern(8 * Sector, 11);
        AssertOk(Submit(d, [Header(VirtioBlockRequest.Out, 8), aligned], [1], alignment: 4096));
        var odd = Pattern(3 * Sector, 12);
        AssertOk(Write(d, 1, odd, 100, 412, 1000, 24)); // 16-byte aligned buffers of odd sizes
        var r1 = Submit(d, [Header(VirtioBlockRequest.In, 8)], [8 * Sector, 1], alignment: 4096);
        var r2 = Read(d, 1, 3 * Sector, 7, 1529);
        AssertOk(r1);
        AssertOk(r2);
        Assert.Equal(aligned, r1.Data);
        Assert.Equal(odd, r2.Data);
        Assert.Equal(probe >= 0, Block(d).Direct); // misaligned buffers did not turn direct I/O off
        var file = File.ReadAllBytes(path);
        Assert.Equal(odd, file[Sector..(4 * Sector)]);
        Assert.Equal(aligned, file[(8 * Sector)..(16 * Sector)]);
    }

    [Fact]
    public void AnImageWithAPartialLastSectorRoundsDown()
    {
        string path = Image(4 * Sector + 300, seed: 5);
        var d = Start(path);
        Assert.Equal(4UL, Block(d).Capacity);
        var r = Read(d, 3, Sector);
        AssertOk(r);
        Assert.Equal(File.ReadAllBytes(path)[(3 * Sector)..(4 * Sector)], r.Data);
        Assert.Equal(VirtioBlockStatus.IoError, Read(d, 4, Sector).Status);
        Assert.Equal(VirtioBlockStatus.IoError, Write(d, 3, new byte[2 * Sector]).Status);
        Assert.Equal(4L * Sector + 300, new FileInfo(path).Length);
    }

    [Fact]
    public void RequestsOutsideTheDiskFailAndWriteNothing()
    {
        string path = Image(128 * Sector, seed: 13);
        var before = File.ReadAllBytes(path);
        var d = Start(path);
        var ones = Enumerable.Repeat((byte)1, 2 * Sector).ToArray();

        var past = Write(d, 127, ones);
        Assert.Equal(VirtioBlockStatus.IoError, past.Status);
        Assert.Equal(1u, past.Written);
        Assert.Equal(VirtioBlockStatus.IoError, Write(d, 128, ones[..Sector]).Status);
        // sector + count overflows
        Assert.Equal(VirtioBlockStatus.IoError, Write(d, ulong.MaxValue, ones[..Sector]).Status);
        Assert.Equal(VirtioBlockStatus.IoError, Write(d, 1UL << 55, ones[..Sector]).Status); // byte offset overflows
        Assert.Equal(VirtioBlockStatus.IoError, Write(d, 0, ones[..100]).Status); // not whole sectors
        Assert.Equal(VirtioBlockStatus.IoError, Command(d, VirtioBlockRequest.Discard, Segments((127, 2, 0))).Status);
        Assert.Equal(VirtioBlockStatus.IoError,
            Command(d, VirtioBlockRequest.WriteZeroes, Segments((ulong.MaxValue - 1, 4, 0))).Status);
        // One good segment and one bad one: nothing is done.
        Assert.Equal(VirtioBlockStatus.IoError,
            Command(d, VirtioBlockRequest.WriteZeroes, Segments((0, 4, 0), (126, 3, 0))).Status);

        var read = Read(d, 127, 2 * Sector);
        Assert.Equal(VirtioBlockStatus.IoError, read.Status);
        Assert.Equal(1u, read.Written);
        Assert.Equal(VirtioBlockStatus.IoError, Read(d, 0, 100).Status);
        Assert.Equal(before, File.ReadAllBytes(path));

        AssertOk(Write(d, 127, ones[..Sector])); // the last sector itself is fine
        Assert.Equal(before.Length, new FileInfo(path).Length);
    }

    // ---- flush, get-id ----

    [Fact]
    public void FlushCompletesWithOk()
    {
        var d = Start(Image(8 * Sector));
        AssertOk(Write(d, 0, Pattern(Sector, 1)));
        var f = Command(d, VirtioBlockRequest.Flush);
        AssertOk(f);
        Assert.Equal(1u, f.Written);
    }

    [Fact]
    public void WithoutFlushNegotiatedWritesAreStillServed()
    {
        string path = Image(8 * Sector);
        var d = Start(path, refuse: VirtioBlockFeature.Flush); // write-through: every write is synced
        var data = Pattern(2 * Sector, 4);
        AssertOk(Write(d, 2, data));
        AssertOk(Command(d, VirtioBlockRequest.WriteZeroes, Segments((2, 1, 0))));
        Assert.Equal([.. new byte[Sector], .. data[Sector..]], File.ReadAllBytes(path)[(2 * Sector)..(4 * Sector)]);
    }

    [Theory]
    [InlineData("vol-42")]
    [InlineData("01234567890123456789")] // 20 bytes: no NUL terminator
    [InlineData(null)]
    public void GetIdReturnsTheSerialNulPadded(string? serial)
    {
        var d = Start(Image(8 * Sector), serial: serial);
        var o = Command(d, VirtioBlockRequest.GetId, writable: 21);
        AssertOk(o);
        Assert.Equal(21u, o.Written);
        var expected = new byte[20];
        Encoding.ASCII.GetBytes(serial ?? "", expected);
        Assert.Equal(expected, o.Data);
    }

    [Fact]
    public void ASerialLongerThan20BytesIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new VirtioBlock(Image(Sector), serial: "012345678901234567890"));
        Assert.Contains("20 bytes", e.Message);
    }

    // ---- discard and write-zeroes ----

    [Fact]
    public void DiscardedSectorsReadBackAsZeros()
    {
        string path = Image(64 * Sector, seed: 21);
        var before = File.ReadAllBytes(path);
        var d = Start(path);
        var o = Command(d, VirtioBlockRequest.Discard, Segments((8, 16, 0), (40, 8, 0), (63, 1, 0)));
        AssertOk(o);
        Assert.Equal(1u, o.Written);

        var after = File.ReadAllBytes(path);
        Assert.Equal(before.Length, after.Length);
        for (int s = 0; s < 64; s++)
        {
            bool gone = s is >= 8 and < 24 or >= 40 and < 48 or 63;
            var range = (s * Sector)..((s + 1) * Sector);
            if (gone) Assert.All(after[range], b => Assert.Equal(0, b));
            else Assert.Equal(before[range], after[range]);
        }
        Assert.All(Read(d, 8, 16 * Sector).Data, b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(VirtioBlockRequest.FlagUnmap)]
    public void WrittenZeroesReadBackAsZeros(uint flags)
    {
        string path = Image(64 * Sector, seed: 22);
        var before = File.ReadAllBytes(path);
        var d = Start(path);
        AssertOk(Command(d, VirtioBlockRequest.WriteZeroes, Segments((1, 3, flags), (20, 20, flags))));
        var r = Read(d, 0, 64 * Sector);
        AssertOk(r);
        for (int s = 0; s < 64; s++)
        {
            bool zero = s is >= 1 and < 4 or >= 20 and < 40;
            var range = (s * Sector)..((s + 1) * Sector);
            if (zero) Assert.All(r.Data[range], b => Assert.Equal(0, b));
            else Assert.Equal(before[range], r.Data[range]);
        }
        Assert.Equal(r.Data, File.ReadAllBytes(path));
    }

    [Fact]
    public void BadDiscardAndWriteZeroesRequestsChangeNothing()
    {
        string path = Image(64 * Sector, seed: 23);
        var before = File.ReadAllBytes(path);
        var d = Start(path);
        byte Status(uint type, byte[]? payload) => Command(d, type, payload).Status;

        Assert.Equal(VirtioBlockStatus.Unsupported, Status(VirtioBlockRequest.Discard, Segments((0, 8, 1)))); // unmap
        Assert.Equal(VirtioBlockStatus.Unsupported, Status(VirtioBlockRequest.Discard, Segments((0, 8, 2))));
        Assert.Equal(VirtioBlockStatus.Unsupported, Status(VirtioBlockRequest.WriteZeroes, Segments((0, 8, 3))));
        var tooMany = Enumerable.Range(0, VirtioBlock.MaxSegments + 1).Select(i => ((ulong)i, 1u, 0u)).ToArray();
        Assert.Equal(VirtioBlockStatus.Unsupported, Status(VirtioBlockRequest.Discard, Segments(tooMany)));
        Assert.Equal(VirtioBlockStatus.IoError, Status(VirtioBlockRequest.Discard, null)); // no segment
        Assert.Equal(VirtioBlockStatus.IoError, Status(VirtioBlockRequest.WriteZeroes, new byte[20])); // 1.25 segments
        Assert.Equal(VirtioBlockStatus.IoError,
            Status(VirtioBlockRequest.WriteZeroes, Segments((0, VirtioBlock.MaxRequestSectors + 1, 0))));
        Assert.Equal(before, File.ReadAllBytes(path));
        var most = Enumerable.Range(0, VirtioBlock.MaxSegments).Select(i => ((ulong)(2 * i), 1u, 0u)).ToArray();
        Assert.Equal(VirtioBlockStatus.Ok, Status(VirtioBlockRequest.WriteZeroes, Segments(most)));
    }

    // ---- read-only drives ----

    [Fact]
    public void AReadOnlyDriveRejectsWritesDiscardAndWriteZeroes()
    {
        string path = Image(16 * Sector, seed: 31);
        var before = File.ReadAllBytes(path);
        var d = Start(path, readOnly: true);
        Assert.Equal(VirtioBlockStatus.IoError, Write(d, 0, new byte[Sector]).Status);
        Assert.Equal(VirtioBlockStatus.IoError, Command(d, VirtioBlockRequest.Discard, Segments((0, 4, 0))).Status);
        Assert.Equal(VirtioBlockStatus.IoError, Command(d, VirtioBlockRequest.WriteZeroes, Segments((0, 4, 0))).Status);
        var r = Read(d, 0, 16 * Sector);
        AssertOk(r);
        Assert.Equal(before, r.Data);
        AssertOk(Command(d, VirtioBlockRequest.Flush));
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    // ---- malformed requests ----

    [Fact]
    public void MalformedRequestsAreAnsweredAndTheDeviceKeepsWorking()
    {
        var d = Start(Image(8 * Sector, seed: 41));
        var shortHeader = Submit(d, [Header(VirtioBlockRequest.In)[..8]], [Sector, 1]);
        Assert.Equal(VirtioBlockStatus.IoError, shortHeader.Status);
        Assert.Equal(1u, shortHeader.Written);

        var noStatus = Submit(d, [Header(VirtioBlockRequest.Out), new byte[Sector]], []);
        Assert.Equal(0u, noStatus.Written);
        var emptyStatus = Submit(d, [Header(VirtioBlockRequest.Flush)], [0]);
        Assert.Equal(0u, emptyStatus.Written);

        Assert.Equal(VirtioBlockStatus.Unsupported, Command(d, 99).Status);
        Assert.Equal(VirtioBlockStatus.Unsupported, Command(d, VirtioBlockRequest.GetLifetime, writable: 7).Status);
        Assert.Equal(VirtioBlockStatus.Unsupported,
            Command(d, VirtioBlockRequest.SecureErase, Segments((0, 1, 0))).Status);

        Assert.False(d.NeedsReset);
        Assert.True(d.Device.Active);
        AssertOk(Read(d, 0, Sector));
    }

    // ---- host failures ----

    [Fact]
    public void AnImageFailureIsReportedOncePerConditionAndIntervalAndEveryRequestIsAnswered()
    {
        string path = Image(16 * Sector, seed: 43);
        var d = Start(path);
        var errors = new List<BlockIoError>();
        Block(d).IoError += errors.Add;
        // The image shrinks under the drive (its host file system lost it): reads past the new end fail with EIO.
        using (var f = new FileStream(path, FileMode.Open)) f.SetLength(4 * Sector);

        // Four requests in one batch, a failing one between good ones: each gets its own used entry and status.
        var placed = new[]
        {
            Place(d, [Header(VirtioBlockRequest.In, 0)], [Sector, 1]),
            Place(d, [Header(VirtioBlockRequest.In, 8)], [Sector, 1]),
            Place(d, [Header(VirtioBlockRequest.In, 9)], [Sector, 1]),
            Place(d, [Header(VirtioBlockRequest.Out, 1), Pattern(Sector, 7)], [1]),
        };
        d.Notify(0);
        var used = d.TakeUsed(0);
        Assert.Equal(placed.Select(p => p.Head), used.Select(u => u.Head));
        byte StatusOf(int i) => d.Memory.GetSpan(placed[i].Parts[^1].Addr, 1)[0];
        Assert.Equal([VirtioBlockStatus.Ok, VirtioBlockStatus.IoError, VirtioBlockStatus.IoError, VirtioBlockStatus.Ok],
            Enumerable.Range(0, 4).Select(StatusOf));
        Assert.Equal(Pattern(Sector, 7), File.ReadAllBytes(path)[Sector..(2 * Sector)]);

        // Two failures, one report; more of the same within the report interval, even after a request that
        // worked, are not reported again.
        Assert.Equal(new BlockIoError("blk0", Write: false, Libc.EIO), Assert.Single(errors));
        Assert.Equal(VirtioBlockStatus.IoError, Read(d, 12, Sector).Status);
        Assert.Single(errors);
        // Once the interval has passed, the same failure is a new report.
        Block(d).IoErrorReportInterval = TimeSpan.Zero;
        Assert.Equal(VirtioBlockStatus.IoError, Read(d, 13, Sector).Status);
        Assert.Equal(2, errors.Count);
        Assert.False(d.NeedsReset);
        AssertOk(Read(d, 3, Sector));
    }

    // ---- opening: locks and errors ----

    [Fact]
    public void TwoDrivesCannotShareAnImageThatOneWrites()
    {
        string path = Image(8 * Sector);
        using (new VirtioBlock(path))
        {
            var e = Assert.Throws<SysException>(() => new VirtioBlock(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("in use", e.Message);
            Assert.Throws<SysException>(() => new VirtioBlock(path, readOnly: true));
        }
        using (new VirtioBlock(path, readOnly: true))
        using (new VirtioBlock(path, readOnly: true)) // readers share
        {
            var e = Assert.Throws<SysException>(() => new VirtioBlock(path));
            Assert.Contains(path, e.Message);
        }
        using var again = new VirtioBlock(path); // closing released the locks
        Assert.Equal(8UL, again.Capacity);
    }

    [Fact]
    public void OpeningErrorsNameTheImage()
    {
        string missing = Path.Combine(_dir.Path, "no-such.img");
        var e = Assert.Throws<SysException>(() => new VirtioBlock(missing));
        Assert.Contains(missing, e.Message);
        Assert.Equal(Libc.ENOENT, e.Errno);

        e = Assert.Throws<SysException>(() => new VirtioBlock(_dir.Path, readOnly: true));
        Assert.Contains(_dir.Path, e.Message);
        Assert.Equal(Libc.EISDIR, e.Errno);
        e = Assert.Throws<SysException>(() => new VirtioBlock(_dir.Path));
        Assert.Contains(_dir.Path, e.Message);

        e = Assert.Throws<SysException>(() => new VirtioBlock("/dev/null"));
        Assert.Contains("/dev/null", e.Message);
    }

    [Fact]
    public void AReadWriteDriveOnAnUnwritableImageIsRefused()
    {
        string path = Image(8 * Sector);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        // Root writes through file modes: make the file immutable instead (and mutable again afterwards).
        bool immutable = Writable(path);
        if (immutable) Chattr("+i", path);
        try
        {
            Assert.False(Writable(path));
            var e = Assert.Throws<SysException>(() => new VirtioBlock(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("read-write", e.Message);
            using var ro = new VirtioBlock(path, readOnly: true);
            Assert.True(ro.ReadOnly);
        }
        finally
        {
            if (immutable) Chattr("-i", path);
        }

        static bool Writable(string path)
        {
            int fd = Libc.Open(path, Libc.O_RDWR, 0);
            if (fd >= 0) Libc.Close(fd);
            return fd >= 0;
        }

        static void Chattr(string flag, string path)
        {
            using var p = Process.Start(new ProcessStartInfo("chattr", [flag, path]) { RedirectStandardError = true })!;
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"chattr {flag} {path}: {p.StandardError.ReadToEnd()}");
        }
    }

    [Fact]
    public void ADisposedDriveIgnoresRequestsAndReleasesItsImage()
    {
        string path = Image(8 * Sector);
        var d = Start(path);
        AssertOk(Write(d, 0, Pattern(Sector, 61)));
        var before = File.ReadAllBytes(path);
        d.Device.Dispose();
        d.Add(0, [TestBuffer.In(Header(VirtioBlockRequest.Out, 1)), TestBuffer.In(Pattern(Sector, 62)),
            TestBuffer.Out(1)]);
        d.Notify(0);
        Assert.Empty(d.TakeUsed(0));
        Assert.Equal(before, File.ReadAllBytes(path));
        using var next = new VirtioBlock(path);
    }

    // ---- cost ----

    [Fact]
    public void ServingRequestsAllocatesNothing()
    {
        string path = Image(64 * Sector, seed: 51);
        var d = Start(path, direct: true, serial: "x");
        void Queue()
        {
            foreach (var (readable, writable) in new (byte[][], uint[])[]
                     {
                         ([Header(VirtioBlockRequest.In, 1)], [100, 924, 1]),
                         ([Header(VirtioBlockRequest.Out, 4), new byte[Sector]], [1]),
                         ([Header(VirtioBlockRequest.Flush)], [1]),
                         ([Header(VirtioBlockRequest.GetId)], [21]),
                         ([Header(VirtioBlockRequest.Discard), Segments((10, 2, 0))], [1]),
                         ([Header(VirtioBlockRequest.WriteZeroes), Segments((12, 2, 1))], [1]),
                         ([Header(77)], [1]),
                         ([Header(VirtioBlockRequest.In, 63)], [2 * Sector, 1]), // past the end: rejected
                         ([Header(VirtioBlockRequest.Discard), Segments((0, 1, 1))], [1]), // unmap on a discard
                     })
                Place(d, readable, writable);
        }

        for (int i = 0; i < 3; i++) // warm-up: first calls, tiering
        {
            Queue();
            d.Notify(0);
            Assert.Equal(9, d.TakeUsed(0).Count);
        }
        Queue();
        long before = GC.GetAllocatedBytesForCurrentThread();
        d.Notify(0);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(9, d.TakeUsed(0).Count);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void ADiskPluggedWholeTakesItsImagesSizeAndReadOnlyness()
    {
        string path = _dir.Write("whole.img", new byte[8192]);
        using var disk = VirtioBlock.WithImage("hot0", RawImage.Open(path, readOnly: true, direct: false), "S1");
        Assert.Equal(("hot0", 16UL, true, "S1"), (disk.Id, disk.Capacity, disk.ReadOnly, disk.Serial));
        using var spare = RawImage.Open(path, readOnly: true, direct: false);
        Assert.Throws<ArgumentException>(() => VirtioBlock.WithImage("hot1", spare, new string('x', 21)));
    }
}
