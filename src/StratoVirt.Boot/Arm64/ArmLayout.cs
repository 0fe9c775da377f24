namespace StratoVirt.Boot.Arm64;

/// <summary>The aarch64 microVM guest physical memory map (upstream StratoVirt's) and its interrupt numbers.</summary>
public static class ArmLayout
{
    /// <summary>GICv3 distributor, 64 KiB.</summary>
    public const ulong GicDistributor = 0x0800_0000;
    public const ulong GicDistributorSize = 0x1_0000;
    /// <summary>GICv3 redistributors: one 128 KiB frame pair (RD_base and SGI_base) per vCPU, up to the UART.</summary>
    public const ulong GicRedistributor = 0x080A_0000;
    public const ulong GicRedistributorStride = 0x2_0000;
    public const ulong GicRedistributorSpace = Pl011 - GicRedistributor;
    /// <summary>How many vCPUs the redistributor space holds (123).</summary>
    public const int MaxCpus = (int)(GicRedistributorSpace / GicRedistributorStride);

    public const ulong Pl011 = 0x0900_0000;
    public const ulong Pl031 = 0x0901_0000;
    /// <summary>Register window of each PrimeCell device (PL011, PL031).</summary>
    public const ulong PrimeCellSize = 0x1000;

    /// <summary>virtio-mmio windows, 0x200 bytes each, one after the other.</summary>
    public const ulong VirtioMmioBase = 0x0A00_0000;
    public const ulong VirtioMmioSize = 0x200;

    public const ulong RamBase = 0x4000_0000;
    /// <summary>The device tree goes at the start of RAM; the boot protocol allows it at most 2 MiB.</summary>
    public const ulong DeviceTree = RamBase;
    public const ulong DeviceTreeMaxSize = 0x20_0000;
    /// <summary>The 2 MiB-aligned base the Image is placed from (plus its text_offset).</summary>
    public const ulong KernelBase = RamBase + 0x20_0000;

    /// <summary>Shared peripheral interrupts (SPI n is GIC interrupt 32 + n).</summary>
    public const uint Pl011Spi = 0;
    public const uint Pl031Spi = 1;
    /// <summary>SPI of virtio-mmio slot 0; slot n uses <c>VirtioMmioFirstSpi + n</c>.</summary>
    public const uint VirtioMmioFirstSpi = 2;

    /// <summary>Private peripheral interrupts (PPI n is GIC interrupt 16 + n) of the architected timer and the
    /// GIC's virtualization maintenance interrupt, as the Arm Base System Architecture assigns them.</summary>
    public const uint TimerSecurePhysicalPpi = 13, TimerPhysicalPpi = 14, TimerVirtualPpi = 11, TimerHypervisorPpi = 10;
    public const uint GicMaintenancePpi = 9;

    /// <summary>Guest address of virtio-mmio slot <paramref name="slot"/>.</summary>
    public static ulong VirtioMmioSlot(int slot) => VirtioMmioBase + (ulong)slot * VirtioMmioSize;
}
