using System.Text;
using StratoVirt.Boot;
using StratoVirt.Boot.Acpi;
using StratoVirt.Devices.Firmware;
using StratoVirt.Kvm;
using StratoVirt.Memory;
using StratoVirt.Virtio.Devices.Block;

namespace StratoVirt.Machine;

/// <summary>
/// UEFI boot of the q35 machine, as QEMU sets it up for OVMF: the two flash units just below 4 GiB (unit 0, the
/// code, as a read-only KVM memory slot whose writes exit to a refusing flash device; unit 1, the variables, as
/// a flash device on the MMIO bus), and fw_cfg on ports 0x510-0x51B with the RAM map, the CPU counts, the boot
/// order, the ACPI tables through the table loader, and the kernel, initrd and command line when -kernel is given.
/// </summary>
internal static class Q35Firmware
{
    /// <summary>The flash units lie between here and 4 GiB, above the APICs and KVM's TSS pages.</summary>
    public const ulong FlashFloor = 0xFF00_0000;

    /// <summary>OVMF on a q35 places BARs in [ECAM end, 0xFC00_0000) itself, top down; the DSDT's 32-bit window
    /// says the same, so that Linux keeps the firmware's assignments.</summary>
    public const ulong Mmio32End = 0xFC00_0000;

    public const string AcpiTablesFile = "etc/acpi/tables", RsdpFile = "etc/acpi/rsdp";
    public const string E820File = "etc/e820", BootMenuWaitFile = "etc/boot-menu-wait";
    private const uint AcpiTablesAlignment = 64; // the FACS's
    private const uint RsdpAlignment = 16;

    /// <summary>Opens the -drive if=pflash files, unit 0 ending at 4 GiB and unit 1 right below it.</summary>
    public static IReadOnlyList<FlashImage> OpenFlash(IReadOnlyList<PflashDrive> drives)
    {
        var images = new List<FlashImage>();
        try
        {
            ulong end = Layout.FourGiB;
            foreach (var drive in drives)
            {
                var image = FlashImage.Open(drive.Path, drive.ReadOnly, end, end - FlashFloor, $"pflash unit {drive.Unit}");
                images.Add(image);
                end = image.GuestAddress;
            }
            return images;
        }
        catch
        {
            foreach (var image in images) image.Dispose();
            throw;
        }
    }

    /// <summary>Maps unit 0 as a read-only memory slot (its writes exit as MMIO) and puts every unit's flash
    /// device on the MMIO bus; returns the devices, unit 0 first.</summary>
    public static IReadOnlyList<Pflash> MapFlash(VirtualMachine vm, KvmSystem kvm, KvmVm kvmVm, IReadOnlyList<FlashImage> images, uint firstSlot)
    {
        if (kvm.CheckExtension(KvmCap.ReadonlyMem) == 0)
            throw new KvmUnavailableException("this host's KVM lacks read-only memory slots, which the firmware's flash needs");
        var code = images[0].Region;
        kvmVm.SetUserMemoryRegion(firstSlot, code.GuestAddress, code.Size, code.HostAddress, KvmVm.MemReadonly);
        var devices = new List<Pflash>(images.Count);
        foreach (var image in images) devices.Add(new Pflash(image));
        foreach (var device in devices) vm.Mmio.Register(device.Image.GuestAddress, device.Image.Size, device);
        return devices;
    }

    /// <summary>Everything fw_cfg tells the firmware about the machine.</summary>
    public sealed record Contents(MachineConfig Config, KernelImage? Kernel, Q35AcpiConfig? Acpi,
        IReadOnlyList<(int Index, string Path)> BootEntries);

    /// <summary>The fw_cfg device with every item of <paramref name="contents"/>; its DMA reaches <paramref name="memory"/>.</summary>
    public static FwCfg CreateFwCfg(GuestMemory memory, Contents contents)
    {
        var config = contents.Config;
        var fwCfg = new FwCfg(memory);
        fwCfg.Add(FwCfgKey.NbCpus, (ushort)config.Cpus.Count);
        fwCfg.Add(FwCfgKey.MaxCpus, (ushort)config.Cpus.MaxCpus);
        fwCfg.AddFile(E820File, BuildE820(memory));
        fwCfg.AddFile(BootMenuWaitFile, [0, 0]); // no boot menu pause (milliseconds, little-endian)
        if (contents.BootEntries.Count > 0) fwCfg.AddFile(BootOrder.FileName, BootOrder.Build(contents.BootEntries));
        if (contents.Acpi is { } acpi) AddAcpi(fwCfg, Q35Tables.BuildForLoader(acpi));
        if (contents.Kernel is { } kernel) AddKernel(fwCfg, kernel, config.InitrdPath, config.CommandLine);
        return fwCfg;
    }

    /// <summary>The RAM regions as e820 records (address, size, type; little-endian, 20 bytes each).</summary>
    public static byte[] BuildE820(GuestMemory memory)
    {
        var map = new E820Map();
        foreach (var region in memory.Regions) map.Add(region.GuestAddress, region.Size, E820Map.Ram);
        var bytes = new byte[map.Entries.Count * E820Map.EntrySize];
        map.WriteTo(bytes);
        return bytes;
    }

    /// <summary>etc/acpi/tables and etc/acpi/rsdp, and the table-loader script that places and links them.</summary>
    public static void AddAcpi(FwCfg fwCfg, AcpiLoaderTables acpi)
    {
        var loader = new TableLoader();
        loader.AddAllocate(AcpiTablesFile, AcpiTablesAlignment, TableLoader.Zone.High);
        loader.AddAllocate(RsdpFile, RsdpAlignment, TableLoader.Zone.FSegment);
        foreach (var (offset, size) in acpi.Pointers) loader.AddAddPointer(AcpiTablesFile, AcpiTablesFile, (uint)offset, (byte)size);
        loader.AddAddPointer(RsdpFile, AcpiTablesFile, AcpiLoaderTables.RsdpXsdtOffset, 8);
        foreach (var (start, length) in acpi.Checksummed)
            loader.AddAddChecksum(AcpiTablesFile, (uint)(start + AcpiLoaderTables.TableChecksumOffset), (uint)start, (uint)length);
        loader.AddAddChecksum(RsdpFile, AcpiLoaderTables.RsdpChecksumOffset, 0, AcpiLoaderTables.RsdpChecksumLength);
        loader.AddAddChecksum(RsdpFile, AcpiLoaderTables.RsdpExtendedChecksumOffset, 0, (uint)acpi.Rsdp.Length);
        fwCfg.AddFile(AcpiTablesFile, acpi.Tables);
        fwCfg.AddFile(RsdpFile, acpi.Rsdp);
        fwCfg.AddFile(TableLoader.FileName, loader.ToArray());
    }

    /// <summary>A bzImage split as QEMU hands it to firmware: the real-mode setup part (boot sector, setup header
    /// and setup code) and the protected-mode kernel; the initrd and the NUL-terminated command line.</summary>
    public static void AddKernel(FwCfg fwCfg, KernelImage kernel, string? initrdPath, string commandLine)
    {
        if (kernel.Format != KernelFormat.BzImage)
            throw new BootException($"kernel {kernel.Path} is not a bzImage; firmware (OVMF) boots only bzImages with an EFI stub");
        var segment = kernel.Segments[0];
        var setup = new byte[segment.FileOffset];
        var code = new byte[checked((int)segment.FileSize)];
        using (var file = kernel.OpenForLoad())
        {
            BootLoader.ReadExactly(file, setup, 0, kernel.Path);
            BootLoader.ReadExactly(file, code, segment.FileOffset, kernel.Path);
        }
        fwCfg.Add(FwCfgKey.SetupSize, (uint)setup.Length);
        fwCfg.Add(FwCfgKey.SetupData, setup);
        fwCfg.Add(FwCfgKey.KernelSize, (uint)code.Length);
        fwCfg.Add(FwCfgKey.KernelData, code);
        if (initrdPath is not null)
        {
            using var file = KernelImage.OpenHostFile(initrdPath, "initrd");
            if (file.Length == 0) throw new BootException($"initrd {initrdPath} is empty");
            if (file.Length > int.MaxValue) throw new BootException($"initrd {initrdPath} is larger than 2 GiB");
            var initrd = new byte[file.Length];
            BootLoader.ReadExactly(file, initrd, 0, initrdPath);
            fwCfg.Add(FwCfgKey.InitrdSize, (uint)initrd.Length);
            fwCfg.Add(FwCfgKey.InitrdData, initrd);
        }
        var cmdline = new byte[Encoding.UTF8.GetByteCount(commandLine) + 1];
        Encoding.UTF8.GetBytes(commandLine, cmdline);
        fwCfg.Add(FwCfgKey.CmdlineSize, (uint)cmdline.Length);
        fwCfg.Add(FwCfgKey.CmdlineData, cmdline);
    }

    /// <summary>The bootorder entries: each -device with bootindex= at the PCI address it was given.</summary>
    public static List<(int Index, string Path)> BootEntries(MachineConfig config, IReadOnlyDictionary<string, (int Slot, int Function)> addresses)
    {
        var entries = new List<(int, string)>();
        foreach (var device in config.Devices)
        {
            if (device.BootIndex is not { } index || !addresses.TryGetValue(device.Id, out var at)) continue;
            var kind = device is BlockDeviceConfig ? BootOrder.DeviceKind.Disk : BootOrder.DeviceKind.Network;
            entries.Add((index, BootOrder.PciPath(kind, at.Slot, at.Function)));
        }
        return entries;
    }
}
