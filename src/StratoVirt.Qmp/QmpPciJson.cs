using System.Text.Json.Serialization;
using StratoVirt.Devices.Pci;

namespace StratoVirt.Qmp;

/// <summary>One bus of <c>query-pci</c>'s return, in QEMU's shape (PciInfo).</summary>
public sealed record QmpPciInfo(int Bus, QmpPciDevice[] Devices)
{
    /// <summary>The root bus (bus 0) with <paramref name="functions"/>; no bus on a machine without PCI.</summary>
    public static QmpPciInfo[] FromRootBus(IReadOnlyList<PciFunctionInfo> functions) =>
        functions.Count == 0 ? [] : [new QmpPciInfo(0, [.. functions.Select(QmpPciDevice.From)])];
}

/// <summary>A function as QEMU's query-pci shows it (PciDeviceInfo): the irq is the guest's interrupt line, given
/// only for a function with an interrupt pin.</summary>
public sealed record QmpPciDevice(int Bus, int Slot, int Function,
    [property: JsonPropertyName("class_info")] QmpPciClass ClassInfo, QmpPciId Id,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Irq,
    [property: JsonPropertyName("irq_pin")] int IrqPin,
    [property: JsonPropertyName("qdev_id")] string QdevId, QmpPciRegion[] Regions,
    [property: JsonPropertyName("pci_bridge"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] QmpPciBridge? PciBridge)
{
    public static QmpPciDevice From(PciFunctionInfo f) => new(f.Bus, f.Slot, f.Function,
        new QmpPciClass(QmpPciClass.Describe(f.Class), f.Class), new QmpPciId(f.DeviceId, f.VendorId, f.SubsystemId, f.SubsystemVendorId),
        f.InterruptPin != 0 ? f.InterruptLine : null, f.InterruptPin, f.QdevId, [.. f.Regions.Select(QmpPciRegion.From)],
        f.Bridge is { } b ? QmpPciBridge.From(b) : null);
}

/// <summary>A bridge's part of its PciDeviceInfo, as QEMU's PciBridgeInfo: its bus numbers and windows, and the
/// functions behind it.</summary>
public sealed record QmpPciBridge(QmpPciBridgeBus Bus, QmpPciDevice[] Devices)
{
    public static QmpPciBridge From(PciBridgeInfo b) => new(new QmpPciBridgeBus(b.Primary, b.Secondary, b.Subordinate,
        new QmpPciRange(b.Io.Base, b.Io.Limit), new QmpPciRange(b.Memory.Base, b.Memory.Limit),
        new QmpPciRange(b.Prefetchable.Base, b.Prefetchable.Limit)), [.. b.Devices.Select(QmpPciDevice.From)]);
}

/// <summary>QEMU's PciBusInfo: the bridge's primary bus (number), secondary and subordinate bus numbers and windows.</summary>
public sealed record QmpPciBridgeBus(int Number, int Secondary, int Subordinate,
    [property: JsonPropertyName("io_range")] QmpPciRange IoRange,
    [property: JsonPropertyName("memory_range")] QmpPciRange MemoryRange,
    [property: JsonPropertyName("prefetchable_range")] QmpPciRange PrefetchableRange);

/// <summary>A window: its first and last address (a closed window has its base above its limit).</summary>
public sealed record QmpPciRange(ulong Base, ulong Limit);

/// <summary>The class (base class and subclass) and, for the classes this machine's functions have and QEMU names,
/// its description.</summary>
public sealed record QmpPciClass([property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Desc,
    [property: JsonPropertyName("class")] int Class)
{
    public static string? Describe(ushort pciClass) => pciClass switch
    {
        0x0100 => "SCSI controller",
        0x0200 => "Ethernet controller",
        0x0600 => "Host bridge",
        0x0601 => "ISA bridge",
        0x0604 => "PCI bridge",
        _ => null,
    };
}

public sealed record QmpPciId(int Device, int Vendor, int Subsystem, [property: JsonPropertyName("subsystem-vendor")] int SubsystemVendor);

/// <summary>A BAR: "io" or "memory", the address it decodes (2^64-1 when it decodes nothing, as QEMU), its size, and
/// for memory whether it is prefetchable and 64-bit.</summary>
public sealed record QmpPciRegion(int Bar, string Type, ulong Address, ulong Size,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Prefetch,
    [property: JsonPropertyName("mem_type_64"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? MemType64)
{
    public static QmpPciRegion From(PciRegionInfo r) => r.Kind == PciBarKind.Io
        ? new(r.Bar, "io", r.Address, r.Size, null, null)
        : new(r.Bar, "memory", r.Address, r.Size, false, r.Kind == PciBarKind.Memory64);
}
