using System.Buffers.Binary;
using System.Text;
using StratoVirt.Boot;
using StratoVirt.Boot.Acpi;
using StratoVirt.Devices.Firmware;
using StratoVirt.Machine;
using StratoVirt.Memory;
using StratoVirt.Tests.Unit;
using StratoVirt.Virtio.Devices.Block;
using StratoVirt.Virtio.Devices.Net;
using Xunit;

namespace StratoVirt.Tests.Firmware;

/// <summary>
/// What the q35 machine's fw_cfg hands OVMF, read back the way firmware reads it: the RAM map, the CPU counts,
/// the boot order, the kernel split as QEMU splits a bzImage, and the ACPI tables, placed and linked by running
/// the table-loader script against guest memory (allocate, add-pointer, add-checksum) and then walked from the
/// RSDP with every checksum verified.
/// </summary>
[Trait("Level", "Unit")]
public sealed class Q35FirmwareTests : IDisposable
{
    private const ulong RamSize = 0xC000_0000; // 3 GiB: 2 GiB low, 1 GiB from 4 GiB
    private readonly GuestMemory _memory = new(Q35Layout.RamRegions(RamSize));
    private readonly string _folder = Directory.CreateTempSubdirectory("q35fw-").FullName;

    public void Dispose()
    {
        _memory.Dispose();
        Directory.Delete(_folder, true);
    }

    private static Q35AcpiConfig Acpi(int cpus) => new(cpus, Q35Builder.AcpiPorts, 9, 5, Q35Layout.EcamBase,
        Q35Layout.Mmio32Base, Q35Layout.Mmio32Size, Q35Layout.Mmio64Base(RamSize), Q35Layout.Mmio64Size, 0xFF);

    private FwCfgDriver Driver(Q35Firmware.Contents contents) => new(Q35Firmware.CreateFwCfg(_memory, contents), _memory);

    private static MachineConfig Config(int cpus = 2, int max = 4) => new()
    {
        Type = MachineType.Q35, MemorySize = RamSize, Cpus = new CpuTopology(cpus, max, 1, 1, 1, max, 1),
    };

    [Fact]
    public void TheRamMapCpuCountsAndBootMenuWaitAreThere()
    {
        var driver = Driver(new(Config(), null, null, []));
        var e820 = driver.ReadFile(Q35Firmware.E820File);
        Assert.Equal(40, e820.Length);
        Assert.Equal((0UL, 0x8000_0000UL, 1u), Entry(e820, 0));
        Assert.Equal((0x1_0000_0000UL, 0x4000_0000UL, 1u), Entry(e820, 1));
        driver.Select(FwCfgKey.NbCpus);
        Assert.Equal([2, 0], driver.ReadPort(2));
        driver.Select(FwCfgKey.MaxCpus);
        Assert.Equal([4, 0], driver.ReadPort(2));
        Assert.Equal([0, 0], driver.ReadFile(Q35Firmware.BootMenuWaitFile));
        Assert.DoesNotContain(BootOrder.FileName, driver.Files().Keys);
        Assert.DoesNotContain(TableLoader.FileName, driver.Files().Keys); // -machine q35,acpi=off
        driver.Select(FwCfgKey.KernelSize);
        Assert.Equal([0, 0, 0, 0], driver.ReadPort(4)); // no kernel: the firmware boots from its disks

        static (ulong, ulong, uint) Entry(byte[] map, int i) => (BinaryPrimitives.ReadUInt64LittleEndian(map.AsSpan(i * 20)),
            BinaryPrimitives.ReadUInt64LittleEndian(map.AsSpan(i * 20 + 8)), BinaryPrimitives.ReadUInt32LittleEndian(map.AsSpan(i * 20 + 16)));
    }

    [Fact]
    public void BootOrderFollowsBootindexWithQemusDevicePaths()
    {
        var config = Config() with
        {
            Devices =
            [
                new BlockDeviceConfig("blk0", "/img0", false, true, null) { BootIndex = 2 },
                new BlockDeviceConfig("blk1", "/img1", false, true, null) { BootIndex = 1 },
                new NetDeviceConfig("net0", "tap0", null, null, false, null) { BootIndex = 3 },
                new BlockDeviceConfig("blk2", "/img2", false, true, null),
            ],
        };
        var addresses = new Dictionary<string, (int, int)> { ["blk0"] = (3, 0), ["blk1"] = (4, 1), ["net0"] = (0x1a, 0), ["blk2"] = (5, 0) };
        var driver = Driver(new(config, null, null, Q35Firmware.BootEntries(config, addresses)));
        Assert.Equal("/pci@i0cf8/scsi@4,1/disk@0,0\n/pci@i0cf8/scsi@3/disk@0,0\n/pci@i0cf8/ethernet@1a\0",
            Encoding.ASCII.GetString(driver.ReadFile(BootOrder.FileName)));
    }

    [Fact]
    public void ABzImageIsSplitIntoSetupAndKernelWithInitrdAndCommandLine()
    {
        var image = BootImageTests.MakeBzImage(pmSize: 0x3000, setupSects: 2);
        string kernelPath = Path.Combine(_folder, "bz");
        string initrdPath = Path.Combine(_folder, "initrd");
        File.WriteAllBytes(kernelPath, image);
        File.WriteAllBytes(initrdPath, [7, 8, 9]);
        var config = Config() with { KernelPath = kernelPath, InitrdPath = initrdPath, CommandLine = "console=ttyS0 quiet" };
        var driver = Driver(new(config, KernelImage.Open(kernelPath), null, []));
        uint Size(ushort key) => BinaryPrimitives.ReadUInt32LittleEndian(driver.DmaRead(key, 4));
        Assert.Equal(3u * 512, Size(FwCfgKey.SetupSize));
        Assert.Equal(image[..(3 * 512)], driver.DmaRead(FwCfgKey.SetupData, 3 * 512));
        Assert.Equal(0x3000u, Size(FwCfgKey.KernelSize));
        Assert.Equal(image[(3 * 512)..], driver.DmaRead(FwCfgKey.KernelData, 0x3000));
        Assert.Equal(3u, Size(FwCfgKey.InitrdSize));
        Assert.Equal([7, 8, 9], driver.DmaRead(FwCfgKey.InitrdData, 3));
        Assert.Equal(20u, Size(FwCfgKey.CmdlineSize));
        Assert.Equal("console=ttyS0 quiet\0"u8.ToArray(), driver.DmaRead(FwCfgKey.CmdlineData, 20));
    }

    [Fact]
    public void OnlyABzImageCanBeHandedToTheFirmware()
    {
        string path = Path.Combine(_folder, "vmlinux.bin");
        File.WriteAllBytes(path, Enumerable.Range(0, 4096).Select(i => (byte)(i * 7 + 1)).ToArray());
        var e = Assert.Throws<BootException>(() => Driver(new(Config() with { KernelPath = path }, KernelImage.Open(path), null, [])));
        Assert.Contains("not a bzImage", e.Message);
    }

    [Fact]
    public void TheFlashUnitsEndAt4GiBOneBelowTheOther()
    {
        string code = Path.Combine(_folder, "code.fd"), vars = Path.Combine(_folder, "vars.fd");
        string big = Path.Combine(_folder, "big.fd"), big2 = Path.Combine(_folder, "big2.fd");
        File.WriteAllBytes(code, new byte[16 << 10]);
        File.WriteAllBytes(vars, new byte[8 << 10]);
        var images = Q35Firmware.OpenFlash([new PflashDrive(0, code, true), new PflashDrive(1, vars, false)]);
        try
        {
            Assert.Equal((1UL << 32) - (16 << 10), images[0].GuestAddress);
            Assert.Equal((1UL << 32) - (24 << 10), images[1].GuestAddress);
            Assert.True(images[0].ReadOnly);
            Assert.False(images[1].ReadOnly);
        }
        finally
        {
            foreach (var image in images) image.Dispose();
        }
        // Together the units stay above the APICs and KVM's pages: 16 MiB at most.
        using (var f = File.Create(big)) f.SetLength(12 << 20);
        using (var f = File.Create(big2)) f.SetLength(12 << 20);
        var e = Assert.Throws<FlashException>(() => Q35Firmware.OpenFlash([new PflashDrive(0, big, true), new PflashDrive(1, big2, false)]));
        Assert.Equal($"pflash unit 1 {big2} is {12 << 20} bytes; at most {4 << 20} fit below 0xff400000", e.Message);
    }

    [Fact]
    public void TheTableLoaderPlacesLinksAndChecksumsTheAcpiTables()
    {
        var driver = Driver(new(Config(cpus: 3), null, Acpi(3), []));
        var files = driver.Files();
        var script = driver.ReadFile(TableLoader.FileName);
        Assert.Equal(0, script.Length % TableLoader.CommandSize);

        // The firmware's side: allocate each file in RAM and DMA it there, then patch and checksum.
        var placed = new Dictionary<string, ulong>();
        ulong next = 0x10_0000;
        for (int at = 0; at < script.Length; at += TableLoader.CommandSize)
        {
            var c = script.AsSpan(at, TableLoader.CommandSize);
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(c);
            string file = Name(c[4..]);
            switch (type)
            {
                case TableLoader.Allocate:
                {
                    uint align = BinaryPrimitives.ReadUInt32LittleEndian(c[60..]);
                    Assert.True(c[64] is 1 or 2);
                    next = (next + align - 1) & ~(ulong)(align - 1);
                    var (key, size) = files[file];
                    Assert.Equal(0u, driver.Dma((uint)key << 16 | FwCfg.DmaSelect | FwCfg.DmaRead, size, next));
                    placed[file] = next;
                    next += size;
                    break;
                }
                case TableLoader.AddPointer:
                {
                    string pointee = Name(c[60..]);
                    uint offset = BinaryPrimitives.ReadUInt32LittleEndian(c[116..]);
                    int size = c[120];
                    Assert.True(offset + size <= files[file].Size);
                    var field = _memory.GetSpan(placed[file] + offset, (ulong)size);
                    var wide = new byte[8];
                    field.CopyTo(wide);
                    ulong value = BinaryPrimitives.ReadUInt64LittleEndian(wide) + placed[pointee];
                    BinaryPrimitives.WriteUInt64LittleEndian(wide, value);
                    wide.AsSpan(0, size).CopyTo(field);
                    break;
                }
                case TableLoader.AddChecksum:
                {
                    uint result = BinaryPrimitives.ReadUInt32LittleEndian(c[60..]);
                    uint start = BinaryPrimitives.ReadUInt32LittleEndian(c[64..]);
                    uint length = BinaryPrimitives.ReadUInt32LittleEndian(c[68..]);
                    Assert.True(start + length <= files[file].Size && result < files[file].Size);
                    _memory.GetSpan(placed[file] + result, 1)[0] = 0;
                    byte sum = 0;
                    foreach (byte b in _memory.GetSpan(placed[file] + start, length)) sum += b;
                    _memory.GetSpan(placed[file] + result, 1)[0] = (byte)-sum;
                    break;
                }
                default:
                    Assert.Fail($"unknown command {type}");
                    break;
            }
        }
        Assert.Equal(0UL, placed[Q35Firmware.RsdpFile] % 16);
        Assert.Equal(0UL, placed[Q35Firmware.AcpiTablesFile] % 64);

        // Walk the tables as an OS would.
        ulong rsdp = placed[Q35Firmware.RsdpFile];
        Assert.Equal("RSD PTR ", Ascii(rsdp, 8));
        Assert.Equal(0, Sum(rsdp, 20));
        Assert.Equal(0, Sum(rsdp, 36));
        ulong xsdt = U64(rsdp + 24);
        Assert.Equal(placed[Q35Firmware.AcpiTablesFile], xsdt);
        var seen = new List<string> { Table(xsdt, "XSDT") };
        uint xsdtLength = U32(xsdt + 4);
        ulong fadt = 0;
        for (ulong e = xsdt + 36; e < xsdt + xsdtLength; e += 8)
        {
            ulong table = U64(e);
            string signature = Ascii(table, 4);
            seen.Add(Table(table, signature));
            if (signature == "FACP") fadt = table;
        }
        Assert.Equal(["XSDT", "FACP", "APIC", "MCFG"], seen);
        Assert.Equal("DSDT", Table(U64(fadt + 140), "DSDT"));
        Assert.Equal("FACS", Ascii(U32(fadt + 36), 4));
        Assert.Equal(3, LocalApics(U64(xsdt + 44)));
    }

    private int LocalApics(ulong madt)
    {
        uint length = U32(madt + 4);
        int lapics = 0;
        for (ulong at = madt + 44; at < madt + length; at += _memory.GetSpan(at + 1, 1)[0])
            if (_memory.GetSpan(at, 1)[0] == 0) lapics++;
        return lapics;
    }

    private string Table(ulong address, string signature)
    {
        Assert.Equal(signature, Ascii(address, 4));
        Assert.Equal(0, Sum(address, U32(address + 4)));
        return signature;
    }

    private static string Name(ReadOnlySpan<byte> field) => Encoding.ASCII.GetString(field[..56]).TrimEnd('\0');
    private string Ascii(ulong address, int length) => Encoding.ASCII.GetString(_memory.GetSpan(address, (ulong)length));
    private ulong U64(ulong address) => BinaryPrimitives.ReadUInt64LittleEndian(_memory.GetSpan(address, 8));
    private uint U32(ulong address) => BinaryPrimitives.ReadUInt32LittleEndian(_memory.GetSpan(address, 4));

    private byte Sum(ulong address, uint length)
    {
        byte sum = 0;
        foreach (byte b in _memory.GetSpan(address, length)) sum += b;
        return sum;
    }
}
