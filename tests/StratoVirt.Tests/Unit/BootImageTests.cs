using System.Buffers.Binary;
using StratoVirt.Boot;
using StratoVirt.Memory;

namespace StratoVirt.Tests.Unit;

/// <summary>Kernel format recognition, zero page, e820 and command line, against hand-made images.</summary>
[Trait("Level", "Unit")]
public sealed class BootImageTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A bzImage-shaped file: boot sector, one setup sector, then a protected-mode part.</summary>
    internal static byte[] MakeBzImage(int pmSize = 0x1000, ushort version = 0x020F, ushort xloadflags = 1,
        uint initSize = 0x200000, int setupSects = 1)
    {
        var image = new byte[(setupSects + 1) * 512 + pmSize];
        image[SetupHeader.SetupSects] = (byte)setupSects;
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.SysSize), (uint)(pmSize / 16));
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(SetupHeader.BootFlag), 0xAA55);
        image[SetupHeader.Jump] = 0xEB;
        image[SetupHeader.Jump + 1] = 0x6A; // header runs to 0x26C
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.Magic), SetupHeader.HdrS);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(SetupHeader.Version), version);
        image[SetupHeader.LoadFlags] = SetupHeader.LoadedHigh;
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.Code32Start), 0x100000);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.InitrdAddrMax), 0x7FFFFFFF);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(SetupHeader.XLoadFlags), xloadflags);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.CmdLineSize), 2047);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(SetupHeader.PrefAddress), 0x1000000);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(SetupHeader.InitSize), initSize);
        for (int i = (setupSects + 1) * 512; i < image.Length; i++) image[i] = (byte)i;
        return image;
    }

    [Fact]
    public void BzImageIsRecognisedWithItsSixtyFourBitEntry()
    {
        var k = KernelImage.Open(_dir.Write("bz", MakeBzImage()));
        Assert.Equal(KernelFormat.BzImage, k.Format);
        Assert.Equal(0x100200UL, k.Entry);
        Assert.Equal(1024L, k.Segments[0].FileOffset);
        Assert.Equal(2047, k.MaxCommandLine);
        Assert.Equal(0x7FFFFFFFUL, k.InitrdAddrMax);
        Assert.Equal(0x1000000UL + 0x200000, k.End);
    }

    [Fact]
    public void ZeroSetupSectsMeansFour()
    {
        var image = MakeBzImage(setupSects: 4);
        image[SetupHeader.SetupSects] = 0;
        var k = KernelImage.Open(_dir.Write("bz4", image));
        Assert.Equal(5 * 512L, k.Segments[0].FileOffset);
    }

    [Theory]
    [InlineData(0x0206, 1, "2.06")]
    [InlineData(0x020F, 0, "no 64-bit entry")]
    public void OldOrThirtyTwoBitBzImagesAreRefused(ushort version, ushort xflags, string expected)
    {
        var e = Assert.Throws<BootException>(() => KernelImage.Open(_dir.Write("old", MakeBzImage(version: version, xloadflags: xflags))));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void TruncatedBzImageIsRefused()
    {
        var image = MakeBzImage(pmSize: 0x2000);
        var e = Assert.Throws<BootException>(() => KernelImage.Open(_dir.Write("trunc", image.AsSpan(0, 3000).ToArray())));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void MissingEmptyAndNonKernelFilesAreRefusedByName()
    {
        string missing = Path.Combine(_dir.Path, "nope");
        Assert.Contains("does not exist", Assert.Throws<BootException>(() => KernelImage.Open(missing)).Message);
        Assert.Contains("is empty", Assert.Throws<BootException>(() => KernelImage.Open(_dir.Write("empty", []))).Message);
        Assert.Contains("text file", Assert.Throws<BootException>(() => KernelImage.Open(_dir.Write("txt", "hello world\n"u8.ToArray()))).Message);
        Assert.Contains("gzip", Assert.Throws<BootException>(() => KernelImage.Open(_dir.Write("gz", [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).Message);
    }

    [Fact]
    public void RawImageLoadsAtSixteenMiB()
    {
        var bytes = new byte[4096];
        bytes[0] = 0xF4;
        bytes[1] = 0x00;
        var k = KernelImage.Open(_dir.Write("raw", bytes));
        Assert.Equal(KernelFormat.VmlinuxBin, k.Format);
        Assert.Equal(0x1000000UL, k.Entry);
    }

    [Fact]
    public void ElfSegmentsAndEntryAreRead()
    {
        var elf = MakeElf(entry: 0x1000000, paddr: 0x1000000, code: [0xF4, 0xF4]);
        var k = KernelImage.Open(_dir.Write("elf", elf));
        Assert.Equal(KernelFormat.Elf, k.Format);
        Assert.Equal(0x1000000UL, k.Entry);
        Assert.Single(k.Segments);
        Assert.Equal(0x1000000UL, k.Segments[0].GuestAddress);
    }

    [Fact]
    public void ElfForAnotherMachineIsRefused()
    {
        var elf = MakeElf(0x1000000, 0x1000000, [0xF4]);
        elf[18] = 183; // aarch64
        Assert.Contains("not x86-64", Assert.Throws<BootException>(() => KernelImage.Open(_dir.Write("arm", elf))).Message);
    }

    internal static byte[] MakeElf(ulong entry, ulong paddr, byte[] code)
    {
        var elf = new byte[0x1000 + code.Length];
        "\u007fELF"u8.CopyTo(elf);
        elf[4] = 2; elf[5] = 1; elf[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(16), 2);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(18), 62);
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(24), entry);
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(32), 64);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(54), 56);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(56), 1);
        var ph = elf.AsSpan(64);
        BinaryPrimitives.WriteUInt32LittleEndian(ph, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[8..], 0x1000);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[16..], paddr);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[24..], paddr);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[32..], (ulong)code.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[40..], (ulong)code.Length + 0x100);
        code.CopyTo(elf, 0x1000);
        return elf;
    }

    [Fact]
    public void ZeroPageCarriesHeaderCommandLineInitrdAndE820()
    {
        using var memory = new GuestMemory(Layout.RamRegions(256UL << 20));
        string kernel = _dir.Write("bz", MakeBzImage());
        string initrd = _dir.Write("initrd", Enumerable.Repeat((byte)0x5A, 10000).ToArray());
        var entry = BootLoader.Load(memory, new BootSpec(KernelImage.Open(kernel), initrd, "console=ttyS0 panic=1", 0xE0000));

        Assert.Equal(0x100200UL, entry.Entry);
        Assert.Equal(0x7000UL, entry.ZeroPage);
        ulong zp = Layout.ZeroPage;
        Assert.Equal(SetupHeader.HdrS, memory.ReadUInt32(zp + SetupHeader.Magic));
        Assert.Equal(0xFF, memory.ReadByte(zp + SetupHeader.TypeOfLoader));
        Assert.Equal(SetupHeader.LoadedHigh | SetupHeader.CanUseHeap, memory.ReadByte(zp + SetupHeader.LoadFlags));
        Assert.Equal(0x20000u, memory.ReadUInt32(zp + SetupHeader.CmdLinePtr));
        Assert.Equal("console=ttyS0 panic=1\0"u8.ToArray(), memory.GetSpan(0x20000, 22).ToArray());
        Assert.Equal(0xE0000UL, memory.ReadUInt64(zp + ZeroPage.AcpiRsdpAddr));

        uint rdImage = memory.ReadUInt32(zp + SetupHeader.RamdiskImage);
        Assert.Equal(10000u, memory.ReadUInt32(zp + SetupHeader.RamdiskSize));
        Assert.Equal(0u, rdImage & 0xFFF);
        Assert.True(rdImage + 10000 <= 256u << 20);
        Assert.Equal(0x5A, memory.ReadByte(rdImage + 9999));

        // Protected-mode part copied to 1 MiB.
        Assert.Equal(1, memory.ReadByte(0x100001)); // the byte at file offset 1025
        // e820: low RAM, EBDA, BIOS area, high RAM.
        Assert.Equal(4, memory.ReadByte(zp + ZeroPage.E820Entries));
        ulong last = zp + ZeroPage.E820Table + 3 * 20;
        Assert.Equal(0x100000UL, memory.ReadUInt64(last));
        Assert.Equal((256UL << 20) - 0x100000, memory.ReadUInt64(last + 8));
        Assert.Equal(E820Map.Ram, memory.ReadUInt32(last + 16));
        // Page tables: PML4 -> PDPT, and the 2 MiB page covering 3 GiB.
        Assert.Equal(Layout.Pdpt | 3, memory.ReadUInt64(Layout.Pml4));
        Assert.Equal(0xC0000000UL | 0x83, memory.ReadUInt64(Layout.PageDirectories + 3 * 0x1000));
    }

    [Fact]
    public void InitrdThatDoesNotFitIsRefused()
    {
        using var memory = new GuestMemory(Layout.RamRegions(128UL << 20));
        string kernel = _dir.Write("bz", MakeBzImage());
        string initrd = _dir.Path + "/big";
        using (var f = File.Create(initrd)) f.SetLength(200L << 20);
        var e = Assert.Throws<BootException>(() => BootLoader.Load(memory, new BootSpec(KernelImage.Open(kernel), initrd, "")));
        Assert.Contains("does not fit", e.Message);
    }

    [Fact]
    public void OverlongCommandLineIsRefused()
    {
        using var memory = new GuestMemory(Layout.RamRegions(128UL << 20));
        var k = KernelImage.Open(_dir.Write("bz", MakeBzImage()));
        var e = Assert.Throws<BootException>(() => BootLoader.Load(memory, new BootSpec(k, null, new string('a', 3000))));
        Assert.Contains("at most 2047", e.Message);
    }

    [Fact]
    public void LargeMemorySplitsAroundTheMmioHole()
    {
        var regions = Layout.RamRegions(4UL << 30);
        Assert.Equal([(0UL, 3UL << 30), (4UL << 30, 1UL << 30)], regions);
        var map = E820Map.ForRam(regions);
        Assert.Contains(map.Entries, e => e.Address == 4UL << 30 && e.Size == 1UL << 30 && e.Type == E820Map.Ram);
    }
}
