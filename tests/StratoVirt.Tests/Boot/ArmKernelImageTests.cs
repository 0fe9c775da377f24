using System.Buffers.Binary;
using StratoVirt.Boot;
using StratoVirt.Boot.Arm64;
using StratoVirt.Memory;

namespace StratoVirt.Tests.Boot;

/// <summary>The arm64 Image header parser and the aarch64 placement of Image, initrd and device tree, against
/// synthetic Images.</summary>
[Trait("Level", "Unit")]
public sealed class ArmKernelImageTests : IDisposable
{
    private const ulong Mib = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>An Image-shaped file: a branch, the header fields, the magic, then recognisable bytes.</summary>
    internal static byte[] MakeImage(int fileSize = 0x3000, ulong imageSize = 0x10000, ulong textOffset = 0,
        ulong flags = 0xA, uint magic = 0x644D5241)
    {
        var image = new byte[fileSize];
        BinaryPrimitives.WriteUInt32LittleEndian(image, 0x14000010); // b #0x40, as a real Image's code0
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(8), textOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(16), imageSize);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(24), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x38), magic);
        for (int i = 64; i < image.Length; i++) image[i] = (byte)(i * 7);
        return image;
    }

    private string Error(byte[] file)
    {
        string path = _dir.Write("k", file);
        return Assert.Throws<BootException>(() => ArmKernelImage.Open(path)).Message;
    }

    [Fact]
    public void HeaderFieldsAreRead()
    {
        string path = _dir.Write("Image", MakeImage(textOffset: 0x80000, imageSize: 0x123000));
        var k = ArmKernelImage.Open(path);
        Assert.Equal(0x80000UL, k.TextOffset);
        Assert.Equal(0x123000UL, k.ImageSize);
        Assert.Equal(0xAUL, k.Flags);
        Assert.Equal(0x3000L, k.FileLength);
        Assert.Equal(0x4020_0000UL + 0x80000, k.LoadAddress);
    }

    [Fact]
    public void AnX86BzImageIsNamed() =>
        Assert.EndsWith("is an x86 bzImage, not an arm64 Image", Error(Unit.BootImageTests.MakeBzImage()));

    [Fact]
    public void ATooOldHeaderIsRefused() =>
        Assert.Contains("image_size 0: an arm64 Image from before Linux 3.17", Error(MakeImage(imageSize: 0)));

    [Theory]
    [InlineData(new byte[] { 0x1F, 0x8B, 8, 0, 0, 0, 0, 0 }, "is gzip-compressed")]
    [InlineData(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0 }, "is an ELF file")]
    [InlineData(new byte[] { (byte)'M', (byte)'Z', 0, 0, (byte)'z', (byte)'i', (byte)'m', (byte)'g' }, "is an EFI zboot image")]
    [InlineData(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, "is only 8 bytes: too short for an arm64 Image header")]
    public void OtherFilesAreNamed(byte[] content, string expected) => Assert.Contains(expected, Error(content));

    [Fact]
    public void TruncatedAndMalformedHeadersAreRefused()
    {
        Assert.Contains("is only 63 bytes", Error(MakeImage()[..63]));
        Assert.Contains("has no arm64 Image magic", Error(MakeImage(magic: 0x12345678)));
        Assert.Contains("big-endian", Error(MakeImage(flags: 1)));
        Assert.Contains("text_offset 0x200000", Error(MakeImage(textOffset: 0x200000)));
        Assert.Contains("text_offset 0x80010", Error(MakeImage(textOffset: 0x80010)));
        Assert.Contains("its header says the image takes 4096", Error(MakeImage(imageSize: 0x1000)));
        Assert.Contains("is empty", Error([]));
    }

    [Fact]
    public void PlanPutsTheInitrdPageAlignedAtTheEndOfRam()
    {
        var k = ArmKernelImage.Open(_dir.Write("Image", MakeImage(imageSize: 20 * Mib)));
        var plan = ArmBootLoader.Plan(k, 128 * Mib, 0x1801);
        Assert.Equal(0x4020_0000UL, plan.KernelAddress);
        Assert.Equal(0x4020_0000UL + 20 * Mib, plan.KernelEnd);
        Assert.Equal(0x4800_0000UL - 0x2000, plan.InitrdStart);
        Assert.Equal(plan.InitrdStart + 0x1801, plan.InitrdEnd);
        Assert.Equal(0x4000_0000UL, plan.DeviceTree);
        Assert.True(plan.HasInitrd);
        Assert.False(ArmBootLoader.Plan(k, 128 * Mib, 0).HasInitrd);
    }

    [Fact]
    public void PlanRefusesWhatDoesNotFit()
    {
        var k = ArmKernelImage.Open(_dir.Write("Image", MakeImage(imageSize: 200 * Mib)));
        Assert.Contains("needs guest memory up to 0x4ca00000 (202 MiB of RAM) but -m gives 128 MiB", Assert.Throws<BootException>(() => ArmBootLoader.Plan(k, 128 * Mib, 0)).Message);
        var small = ArmKernelImage.Open(_dir.Write("Image2", MakeImage(imageSize: 100 * Mib)));
        var e = Assert.Throws<BootException>(() => ArmBootLoader.Plan(small, 128 * Mib, 30 * Mib, "big.cpio"));
        Assert.Equal("initrd big.cpio (30 MiB) does not fit in guest memory: 26 MiB free after the kernel; raise -m", e.Message);
    }

    [Fact]
    public void LoadCopiesKernelInitrdAndDeviceTree()
    {
        byte[] kernelBytes = MakeImage(imageSize: 4 * Mib);
        var k = ArmKernelImage.Open(_dir.Write("Image", kernelBytes));
        byte[] initrd = [.. Enumerable.Range(0, 5000).Select(i => (byte)(i * 3))];
        string initrdPath = _dir.Write("initrd", initrd);
        using var memory = new GuestMemory([(ArmLayout.RamBase, 128 * Mib)]);
        ArmBootPlan seen = default;
        var plan = ArmBootLoader.Load(memory, k, initrdPath, p => { seen = p; return [0xD0, 0x0D, 0xFE, 0xED]; });
        Assert.Equal(plan, seen);
        Assert.Equal(kernelBytes, memory.GetSpan(plan.KernelAddress, (ulong)kernelBytes.Length).ToArray());
        Assert.Equal(initrd, memory.GetSpan(plan.InitrdStart, (ulong)initrd.Length).ToArray());
        Assert.Equal(0xEDFE0DD0u, memory.ReadUInt32(ArmLayout.DeviceTree));
    }

    [Fact]
    public void LoadRefusesAnEmptyInitrdAndAnOversizedDeviceTree()
    {
        var k = ArmKernelImage.Open(_dir.Write("Image", MakeImage()));
        using var memory = new GuestMemory([(ArmLayout.RamBase, 128 * Mib)]);
        string empty = _dir.Write("empty", []);
        Assert.EndsWith("is empty", Assert.Throws<BootException>(() => ArmBootLoader.Load(memory, k, empty, _ => [])).Message);
        var e = Assert.Throws<BootException>(() => ArmBootLoader.Load(memory, k, null, _ => new byte[3 * Mib]));
        Assert.Equal("the device tree is 3145728 bytes; the boot protocol allows at most 2 MiB", e.Message);
    }
}
