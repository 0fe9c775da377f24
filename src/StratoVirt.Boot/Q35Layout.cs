namespace StratoVirt.Boot;

/// <summary>
/// The q35 standard VM's guest physical memory map, as upstream's: RAM below 2 GiB, PCI Express ECAM at
/// 0xB000_0000 (256 buses), the 32-bit PCI MMIO window from 0xC000_0000 to 0xF000_0000, the rest of RAM from
/// 4 GiB, and the 64-bit PCI MMIO window above it. The low 1 MiB is as on the microVM (<see cref="Layout"/>).
/// </summary>
public static class Q35Layout
{
    public const ulong LowRamEnd = 0x8000_0000;
    public const ulong EcamBase = 0xB000_0000;
    public const ulong EcamSize = 0x1000_0000;
    public const ulong Mmio32Base = 0xC000_0000;
    public const ulong Mmio32Size = 0x3000_0000;
    public const ulong Mmio64Size = 0x8_0000_0000; // 32 GiB

    /// <summary>The IOAPIC pins 16-19 carry the PCI interrupt pins, rotated by slot: pin <paramref name="pin"/>
    /// (0 is INTA#) of slot <paramref name="slot"/> reaches this GSI. The DSDT's _PRT and the devices both use it.</summary>
    public static uint IntxGsi(int slot, int pin) => 16 + (uint)((slot + pin) % 4);

    /// <summary>Splits a RAM size into the regions below 2 GiB and from 4 GiB.</summary>
    public static IReadOnlyList<(ulong Address, ulong Size)> RamRegions(ulong ramSize) =>
        ramSize <= LowRamEnd ? [(0, ramSize)] : [(0, LowRamEnd), (Layout.FourGiB, ramSize - LowRamEnd)];

    /// <summary>The 64-bit window starts at the first 1 GiB boundary above RAM and at 4 GiB at the least.</summary>
    public static ulong Mmio64Base(ulong ramSize)
    {
        ulong end = ramSize <= LowRamEnd ? Layout.FourGiB : Layout.FourGiB + ramSize - LowRamEnd;
        return (end + (1UL << 30) - 1) & ~((1UL << 30) - 1);
    }
}
