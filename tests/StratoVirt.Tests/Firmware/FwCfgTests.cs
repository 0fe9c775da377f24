using System.Buffers.Binary;
using System.Text;
using StratoVirt.Devices.Firmware;
using StratoVirt.Memory;
using Xunit;

namespace StratoVirt.Tests.Firmware;

/// <summary>fw_cfg's registers and DMA protocol, driven as firmware drives them, hostile requests included.</summary>
[Trait("Level", "Unit")]
public sealed class FwCfgTests : IDisposable
{
    private readonly GuestMemory _memory = new([(0, 1 << 20)]);
    private readonly FwCfg _fwCfg;
    private readonly FwCfgDriver _driver;

    public FwCfgTests()
    {
        _fwCfg = new FwCfg(_memory);
        _driver = new FwCfgDriver(_fwCfg, _memory);
    }

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void SignatureAndIdReadThroughTheDataPort()
    {
        _driver.Select(FwCfgKey.Signature);
        Assert.Equal("QEMU"u8.ToArray(), _driver.ReadPort(4));
        Assert.Equal([0, 0], _driver.ReadPort(2)); // past the end: zeros
        _driver.Select(FwCfgKey.Id);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(_driver.ReadPort(4))); // traditional and DMA
        _driver.Select(FwCfgKey.Signature); // selecting starts again from the first byte
        Assert.Equal((byte)'Q', _driver.ReadPort(1)[0]);
    }

    [Fact]
    public void AResetSelectsTheSignatureFromItsFirstByte()
    {
        _driver.Select(FwCfgKey.Id);
        _driver.ReadPort(2);
        _fwCfg.Reset();
        Assert.Equal("QEMU"u8.ToArray(), _driver.ReadPort(4));
    }

    [Fact]
    public void TheDmaRegisterReadsItsSignature()
    {
        var b = new byte[8];
        _fwCfg.Read(4, b);
        Assert.Equal("QEMU CFG", Encoding.ASCII.GetString(b));
    }

    [Fact]
    public void FilesAreListedByNameWithBigEndianSizesAndKeys()
    {
        _fwCfg.AddFile("etc/zzz", [1, 2, 3]);
        _fwCfg.AddFile("bootorder", "/pci@i0cf8/scsi@3/disk@0,0\0"u8.ToArray());
        _fwCfg.AddFile("etc/e820", new byte[40]);
        _driver.Select(FwCfgKey.FileDir);
        var dir = _driver.ReadPort(4 + 3 * 64);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32BigEndian(dir));
        string Name(int i) => Encoding.ASCII.GetString(dir, 4 + i * 64 + 8, 56).TrimEnd('\0');
        Assert.Equal(["bootorder", "etc/e820", "etc/zzz"], [Name(0), Name(1), Name(2)]);
        Assert.Equal(40u, BinaryPrimitives.ReadUInt32BigEndian(dir.AsSpan(4 + 64)));
        Assert.Equal((ushort)0x21, BinaryPrimitives.ReadUInt16BigEndian(dir.AsSpan(4 + 64 + 4)));
        Assert.Equal((ushort)0x21, _fwCfg.FileKey("etc/e820"));
        _driver.Select(0x22);
        Assert.Equal([1, 2, 3], _driver.ReadPort(3));
        Assert.Throws<ArgumentException>(() => _fwCfg.AddFile("etc/zzz", []));
        Assert.Throws<ArgumentException>(() => _fwCfg.AddFile(new string('x', 56), []));
    }

    [Fact]
    public void DmaSelectsReadsAndZeroFillsPastTheEnd()
    {
        _fwCfg.AddFile("etc/data", [10, 20, 30, 40, 50]);
        ushort key = _fwCfg.FileKey("etc/data")!.Value;
        _memory.GetSpan(FwCfgDriver.BufferAddress, 8).Fill(0xEE);
        uint status = _driver.Dma((uint)key << 16 | FwCfg.DmaSelect | FwCfg.DmaRead, 8, FwCfgDriver.BufferAddress);
        Assert.Equal(0u, status);
        Assert.Equal([10, 20, 30, 40, 50, 0, 0, 0], _memory.GetSpan(FwCfgDriver.BufferAddress, 8).ToArray());
    }

    [Fact]
    public void DmaSkipMovesTheOffsetAndTheDataPortContinuesFromIt()
    {
        _fwCfg.AddFile("etc/data", [10, 20, 30, 40, 50]);
        ushort key = _fwCfg.FileKey("etc/data")!.Value;
        Assert.Equal(0u, _driver.Dma((uint)key << 16 | FwCfg.DmaSelect | FwCfg.DmaSkip, 2, 0));
        Assert.Equal([30], _driver.ReadPort(1));
        // An 8-byte write of the address register starts a transfer too; without select it continues.
        Assert.Equal(0u, _driver.Dma(FwCfg.DmaRead, 2, FwCfgDriver.BufferAddress, split: false));
        Assert.Equal([40, 50], _memory.GetSpan(FwCfgDriver.BufferAddress, 2).ToArray());
    }

    [Fact]
    public void EveryItemRefusesDmaWrites()
    {
        _fwCfg.AddFile("etc/data", [1, 2]);
        ushort key = _fwCfg.FileKey("etc/data")!.Value;
        uint status = _driver.Dma((uint)key << 16 | FwCfg.DmaSelect | FwCfg.DmaWrite, 2, FwCfgDriver.BufferAddress);
        Assert.Equal(FwCfg.DmaError, status);
        _driver.Select(key);
        Assert.Equal([1, 2], _driver.ReadPort(2));
    }

    [Theory]
    [InlineData(0xF_FFFFUL, 16u)] // straddles the end of RAM
    [InlineData(0x1000_0000UL, 4u)] // no RAM there
    [InlineData(0xFFFF_FFFF_FFFF_FFF0UL, 0x20u)] // wraps around
    [InlineData(0x0UL, 0xFFFF_FFFFu)] // longer than RAM
    public void DmaBuffersOutsideGuestRamFailWithTheErrorBit(ulong address, uint length)
    {
        uint status = _driver.Dma((uint)FwCfgKey.Signature << 16 | FwCfg.DmaSelect | FwCfg.DmaRead, length, address);
        Assert.Equal(FwCfg.DmaError, status);
    }

    [Fact]
    public void ADescriptorOutsideGuestRamIsDropped()
    {
        Assert.Equal(uint.MaxValue, _driver.Dma(FwCfg.DmaRead, 4, 0, descriptor: 0x2000_0000));
        _driver.Select(FwCfgKey.Signature); // the device still works
        Assert.Equal("QEMU"u8.ToArray(), _driver.ReadPort(4));
    }

    [Fact]
    public void PlainItemsTakeLittleEndianValues()
    {
        _fwCfg.Add(FwCfgKey.NbCpus, (ushort)3);
        _fwCfg.Add(FwCfgKey.KernelSize, 0x12345678u);
        _driver.Select(FwCfgKey.NbCpus);
        Assert.Equal([3, 0], _driver.ReadPort(2));
        Assert.Equal([0x78, 0x56, 0x34, 0x12], _driver.DmaRead(FwCfgKey.KernelSize, 4));
        Assert.Throws<ArgumentException>(() => _fwCfg.Add(FwCfgKey.FileDir, [0]));
        Assert.Throws<ArgumentException>(() => _fwCfg.Add(0x20, [0]));
    }
}

/// <summary>The OpenFirmware device paths of the bootorder file.</summary>
[Trait("Level", "Unit")]
public sealed class BootOrderTests
{
    [Theory]
    [InlineData(BootOrder.DeviceKind.Disk, 3, 0, "/pci@i0cf8/scsi@3/disk@0,0")]
    [InlineData(BootOrder.DeviceKind.Disk, 0x1e, 7, "/pci@i0cf8/scsi@1e,7/disk@0,0")]
    [InlineData(BootOrder.DeviceKind.Network, 4, 1, "/pci@i0cf8/ethernet@4,1")]
    public void PathsNameTheSlotInHex(BootOrder.DeviceKind kind, int slot, int function, string path) =>
        Assert.Equal(path, BootOrder.PciPath(kind, slot, function));

    [Fact]
    public void EntriesAreOrderedByIndexAndNulTerminated() =>
        Assert.Equal("a\nb\nc\0"u8.ToArray(), BootOrder.Build([(5, "c"), (0, "a"), (2, "b")]));
}
