using StratoVirt.Devices.Firmware;
using Xunit;

namespace StratoVirt.Tests.Firmware;

/// <summary>The CFI flash's Intel command set over an image file, as OVMF drives the variable store.</summary>
[Trait("Level", "Unit")]
public sealed class PflashTests : IDisposable
{
    private const ulong FourGiB = 1UL << 32;
    private const int Blocks = 4;
    private const int Size = Blocks * (int)FlashImage.DefaultBlockSize;
    private readonly string _folder = Directory.CreateTempSubdirectory("pflash-").FullName;
    private readonly Disposables _owned = new();

    public void Dispose()
    {
        _owned.Dispose();
        Directory.Delete(_folder, true);
    }

    private string File(int size, byte fill = 0x5A)
    {
        string path = Path.Combine(_folder, $"vars-{Guid.NewGuid():N}.fd");
        var content = new byte[size];
        Array.Fill(content, fill);
        for (int i = 0; i < size; i += 4096) content[i] = (byte)(i / 4096); // each block's first byte: its number
        System.IO.File.WriteAllBytes(path, content);
        return path;
    }

    private Pflash Open(string path, bool readOnly = false) =>
        new(_owned.Own(FlashImage.Open(path, readOnly, FourGiB, 16 << 20, "pflash unit 1")));

    private static byte Read(Pflash flash, ulong offset)
    {
        var b = new byte[1];
        flash.Read(offset, b);
        return b[0];
    }

    private static void Write(Pflash flash, ulong offset, params byte[] data) => flash.Write(offset, data);

    [Fact]
    public void TheImageEndsAtItsUnitsEndAndReadsAsArray()
    {
        var flash = Open(File(Size));
        Assert.Equal(FourGiB - Size, flash.Image.GuestAddress);
        Assert.Equal(2, Read(flash, 2 * 4096));
        Assert.Equal(0x5A, Read(flash, 5));
    }

    [Fact]
    public void AResetLeavesCommandModeForTheArray()
    {
        var flash = Open(File(Size));
        Write(flash, 0x55, Pflash.CmdCfiQuery);
        Assert.Equal((byte)'Q', Read(flash, 0x10));
        flash.Reset();
        Assert.Equal(0x5A, Read(flash, 0x10));
    }

    [Fact]
    public void CfiQueryDescribesTheChip()
    {
        var flash = Open(File(Size));
        Write(flash, 0x55, Pflash.CmdCfiQuery);
        Assert.Equal("QRY"u8.ToArray(), new[] { Read(flash, 0x10), Read(flash, 0x11), Read(flash, 0x12) });
        Assert.Equal(1, Read(flash, 0x13)); // Intel/Sharp command set
        Assert.Equal(14, Read(flash, 0x27)); // 2^14 = 16 KiB
        Assert.Equal(1, Read(flash, 0x2C)); // one erase block region
        Assert.Equal(Blocks - 1, Read(flash, 0x2D) | Read(flash, 0x2E) << 8);
        Assert.Equal(4096, (Read(flash, 0x2F) | Read(flash, 0x30) << 8) * 256);
        Write(flash, 0, Pflash.CmdReadArray);
        Assert.Equal(0, Read(flash, 0));
    }

    [Fact]
    public void ReadIdentifierGivesManufacturerAndDevice()
    {
        var flash = Open(File(Size));
        Write(flash, 0, Pflash.CmdReadId);
        Assert.Equal(Pflash.ManufacturerId, Read(flash, 0));
        Assert.Equal(Pflash.DeviceId, Read(flash, 1));
    }

    [Fact]
    public void OvmfsProbeSeesFlashNotRamOrRom()
    {
        // OVMF writes clear status to a byte, reads it back, writes read status and reads it: flash answers with
        // the original byte, then 0x00 (every status bit cleared).
        var flash = Open(File(Size));
        byte original = Read(flash, 1);
        Write(flash, 1, Pflash.CmdClearStatus);
        Assert.Equal(original, Read(flash, 1));
        Write(flash, 1, Pflash.CmdReadStatus);
        Assert.Equal(0, Read(flash, 1));
        Write(flash, 1, Pflash.CmdReadArray);
        Assert.Equal(original, Read(flash, 1));
    }

    [Fact]
    public void ProgramAndEraseReachTheFile()
    {
        string path = File(Size);
        var flash = Open(path);
        Write(flash, 0, Pflash.CmdReadStatus);
        Assert.Equal(Pflash.StatusReady, Read(flash, 0));
        Write(flash, 4100, Pflash.CmdProgram);
        Write(flash, 4100, 0x12);
        Assert.Equal(Pflash.StatusReady, Read(flash, 4100)); // status until read array
        Write(flash, 4101, Pflash.CmdProgramAlt);
        Write(flash, 4101, 0x34);
        Write(flash, 0, Pflash.CmdReadArray);
        Assert.Equal(0x12, Read(flash, 4100));
        Assert.Equal(0x34, Read(flash, 4101));
        var file = System.IO.File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x12, 0x34 }, file[4100..4102]);

        Write(flash, 3 * 4096 + 77, Pflash.CmdErase);
        Write(flash, 3 * 4096 + 77, Pflash.CmdConfirm);
        Assert.Equal(Pflash.StatusReady, Read(flash, 0));
        Write(flash, 0, Pflash.CmdReadArray);
        file = System.IO.File.ReadAllBytes(path);
        Assert.All(file[(3 * 4096)..], b => Assert.Equal(0xFF, b));
        Assert.Equal(0xFF, Read(flash, 3 * 4096));
        Assert.Equal(2, file[2 * 4096]); // the block before is untouched
        Assert.Equal(0x5A, Read(flash, 3 * 4096 - 1));
    }

    [Fact]
    public void EraseWithoutConfirmIsASequenceError()
    {
        string path = File(Size);
        var flash = Open(path);
        Write(flash, 0, Pflash.CmdErase);
        Write(flash, 0, 0x00);
        Assert.Equal(Pflash.StatusReady | Pflash.StatusEraseError | Pflash.StatusProgramError, Read(flash, 0));
        Write(flash, 0, Pflash.CmdReadArray);
        Assert.Equal(0, Read(flash, 0));
        Assert.Equal(0x5A, System.IO.File.ReadAllBytes(path)[1]);
    }

    [Fact]
    public void AReadOnlyImageRefusesProgramAndEraseLikeALockedBlock()
    {
        string path = File(Size);
        var before = System.IO.File.ReadAllBytes(path);
        var flash = Open(path, readOnly: true);
        Write(flash, 8, Pflash.CmdProgram);
        Write(flash, 8, 0x00);
        Assert.Equal(Pflash.StatusReady | Pflash.StatusProgramError | Pflash.StatusLocked, Read(flash, 8));
        Write(flash, 0, Pflash.CmdClearStatus);
        Write(flash, 0, Pflash.CmdErase);
        Write(flash, 0, Pflash.CmdConfirm);
        Assert.Equal(Pflash.StatusReady | Pflash.StatusEraseError | Pflash.StatusLocked, Read(flash, 0));
        Write(flash, 0, Pflash.CmdReadArray);
        Assert.Equal(0x5A, Read(flash, 8));
        Assert.Equal(before, System.IO.File.ReadAllBytes(path));
    }

    [Fact]
    public void AccessesPastTheEndAreHarmless()
    {
        var flash = Open(File(Size));
        Write(flash, Size, Pflash.CmdProgram);
        Assert.Equal(0xFF, Read(flash, Size - 1 + 1));
        var wide = new byte[8];
        flash.Read(Size - 4, wide);
        Assert.All(wide, b => Assert.Equal(0xFF, b));
    }

    [Fact]
    public void TwoVmsCannotShareAVariablesFile()
    {
        string path = File(Size);
        Open(path);
        var e = Assert.Throws<FlashException>(() => FlashImage.Open(path, false, FourGiB, 16 << 20, "pflash unit 1"));
        Assert.StartsWith($"pflash unit 1 {path} is in use by another VM or drive (cannot take its exclusive lock)", e.Message);
        Assert.Throws<FlashException>(() => FlashImage.Open(path, true, FourGiB, 16 << 20, "pflash unit 1"));
        var code = File(Size);
        Open(code, readOnly: true);
        Open(code, readOnly: true); // read-only units share
    }

    [Fact]
    public void BadFilesAreOneLineErrors()
    {
        string Error(string path, ulong max = 16 << 20) =>
            Assert.Throws<FlashException>(() => FlashImage.Open(path, false, FourGiB, max, "pflash unit 1")).Message;
        Assert.Equal($"pflash unit 1 file {_folder}/none.fd does not exist", Error(Path.Combine(_folder, "none.fd")));
        Assert.Contains("not a whole number of 4096-byte flash blocks", Error(File(5000)));
        Assert.Contains("is 0 bytes", Error(File(0)));
        Assert.Contains("at most 8192 fit below 0x100000000", Error(File(Size), 8192));
        Assert.Contains("is a directory", Assert.Throws<FlashException>(() => FlashImage.Open(_folder, true, FourGiB, 1 << 20, "pflash unit 0")).Message);
    }
}
