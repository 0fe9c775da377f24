namespace StratoVirt.Boot;

/// <summary>The x86_64 microVM guest physical memory map.</summary>
public static class Layout
{
    public const ulong Gdt = 0x500;
    public const ulong Idt = 0x520;
    public const ulong ZeroPage = 0x7000;
    public const ulong BootStack = 0x8FF0;
    public const ulong Pml4 = 0x9000;
    public const ulong Pdpt = 0xA000;
    /// <summary>Four page directories (0xB000-0xEFFF) identity-map the first 4 GiB with 2 MiB pages.</summary>
    public const ulong PageDirectories = 0xB000;
    public const ulong CommandLine = 0x20000;
    public const ulong CommandLineMax = 0x10000;
    public const ulong EbdaStart = 0x9FC00;
    public const ulong BiosAreaStart = 0xA0000;
    public const ulong HighMemory = 0x100000;
    /// <summary>Where a bzImage's protected-mode part goes (its code32_start).</summary>
    public const ulong BzImageLoad = 0x100000;
    /// <summary>Where an uncompressed vmlinux.bin is loaded and entered (Linux's default LOAD_PHYSICAL_ADDR).</summary>
    public const ulong VmlinuxLoad = 0x1000000;
    /// <summary>Highest end address for an initrd of a kernel that does not state its own limit.</summary>
    public const ulong DefaultInitrdAddrMax = 0x37FFFFFF;

    /// <summary>RAM stops here below 4 GiB; the MMIO hole runs to 4 GiB.</summary>
    public const ulong MmioHoleStart = 0xC000_0000;
    public const ulong FourGiB = 0x1_0000_0000;

    /// <summary>Firecracker-compatible boot timer: the first MMIO device.</summary>
    public const ulong BootTimer = 0xC000_0000;
    public const ulong BootTimerSize = 0x1000;
    /// <summary>virtio-mmio windows, as upstream StratoVirt's microvm places them.</summary>
    public const ulong VirtioMmioBase = 0xF010_0000;
    public const ulong VirtioMmioSize = 0x200;
    public const ulong IoApic = 0xFEC0_0000;
    public const ulong Lapic = 0xFEE0_0000;
    /// <summary>Three pages KVM needs for the real-mode TSS, plus the identity-map page after them.</summary>
    public const ulong KvmTss = 0xFEF0_C000;
    public const ulong KvmIdentityMap = 0xFEF0_F000;

    /// <summary>Splits a RAM size into the regions below the MMIO hole and above 4 GiB.</summary>
    public static IReadOnlyList<(ulong Address, ulong Size)> RamRegions(ulong ramSize)
    {
        if (ramSize <= MmioHoleStart) return [(0, ramSize)];
        return [(0, MmioHoleStart), (FourGiB, ramSize - MmioHoleStart)];
    }
}
