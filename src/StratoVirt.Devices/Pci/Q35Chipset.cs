namespace StratoVirt.Devices.Pci;

/// <summary>
/// The q35 memory controller hub at 00:00.0 (Intel 82G33 DRAM controller, 8086:29C0). Its PCIEXBAR register
/// (0x60) tells the guest where ECAM is; the window is fixed, so the register is read-only.
/// </summary>
public sealed class Q35HostBridge : PciFunction
{
    public const ushort DeviceIdValue = 0x29C0;
    public const int PciExBar = 0x60;

    public Q35HostBridge(ulong ecamBase)
        : base(new PciConfigSpace(PciConfigSpace.ExpressSize, IntelVendor, DeviceIdValue, 0x060000))
    {
        // Length field 0 (bits 2:1) is 256 buses; bit 0 enables the window.
        Config.SetU64(PciExBar, ecamBase | 1);
    }

    public const ushort IntelVendor = 0x8086;

    public override string Name => "mch";
}

/// <summary>
/// The ICH9 LPC bridge at 00:1f.0 (8086:2918): it tells the guest where the ACPI power-management registers
/// are (PMBASE at 0x40, enabled in ACPI_CNTL at 0x44). Both are fixed here, so they are read-only.
/// </summary>
public sealed class Ich9LpcBridge : PciFunction
{
    public const ushort DeviceIdValue = 0x2918;
    public const int Slot = 0x1F;
    public const int PmBase = 0x40, AcpiControl = 0x44;
    private const byte AcpiEnable = 0x80;

    public Ich9LpcBridge(ushort pmBase)
        : base(new PciConfigSpace(PciConfigSpace.ExpressSize, Q35HostBridge.IntelVendor, DeviceIdValue, 0x060100,
            multiFunction: true))
    {
        Config.SetU32(PmBase, pmBase | 1u); // bit 0: I/O space
        Config.SetU8(AcpiControl, AcpiEnable);
    }

    public override string Name => "ich9-lpc";
}
