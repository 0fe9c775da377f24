using System.Text.Json;
using StratoVirt.Devices.Pci;

namespace StratoVirt.Qmp;

/// <summary>One bus of <c>query-pci</c>'s return, in QEMU's shape (PciInfo).</summary>
public sealed record QmpPciInfo(int Bus, QmpPciDevice[] Devices) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("bus", Bus);
        QmpJson.WriteArray(w, "devices", Devices);
        w.WriteEndObject();
    }

    /// <summary>The root bus (bus 0) with <paramref name="functions"/>; no bus on a machine without PCI.</summary>
    public static QmpPciInfo[] FromRootBus(IReadOnlyList<PciFunctionInfo> functions) =>
        functions.Count == 0 ? [] : [new QmpPciInfo(0, QmpPciDevice.FromAll(functions))];
}

/// <summary>A function as QEMU's query-pci shows it (PciDeviceInfo): the irq is the guest's interrupt line, given
/// only for a function with an interrupt pin.</summary>
public sealed record QmpPciDevice(int Bus, int Slot, int Function, QmpPciClass ClassInfo, QmpPciId Id, int? Irq,
    int IrqPin, string QdevId, QmpPciRegion[] Regions, QmpPciBridge? PciBridge) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("bus", Bus);
        w.WriteNumber("slot", Slot);
        w.WriteNumber("function", Function);
        QmpJson.WriteObject(w, "class_info", ClassInfo);
        QmpJson.WriteObject(w, "id", Id);
        if (Irq is { } irq) w.WriteNumber("irq", irq);
        w.WriteNumber("irq_pin", IrqPin);
        w.WriteString("qdev_id", QdevId);
        QmpJson.WriteArray(w, "regions", Regions);
        if (PciBridge is not null) QmpJson.WriteObject(w, "pci_bridge", PciBridge);
        w.WriteEndObject();
    }

    public static QmpPciDevice From(PciFunctionInfo f) => new(f.Bus, f.Slot, f.Function,
        new QmpPciClass(QmpPciClass.Describe(f.Class), f.Class), new QmpPciId(f.DeviceId, f.VendorId, f.SubsystemId, f.SubsystemVendorId),
        f.InterruptPin != 0 ? f.InterruptLine : null, f.InterruptPin, f.QdevId, QmpPciRegion.FromAll(f.Regions),
        f.Bridge is { } b ? QmpPciBridge.From(b) : null);

    /// <summary>Each of <paramref name="functions"/>, in order.</summary>
    internal static QmpPciDevice[] FromAll(IReadOnlyList<PciFunctionInfo> functions)
    {
        var devices = new QmpPciDevice[functions.Count];
        for (int i = 0; i < devices.Length; i++) devices[i] = From(functions[i]);
        return devices;
    }
}

/// <summary>A bridge's part of its PciDeviceInfo, as QEMU's PciBridgeInfo: its bus numbers and windows, and the
/// functions behind it.</summary>
public sealed record QmpPciBridge(QmpPciBridgeBus Bus, QmpPciDevice[] Devices) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        QmpJson.WriteObject(w, "bus", Bus);
        QmpJson.WriteArray(w, "devices", Devices);
        w.WriteEndObject();
    }

    public static QmpPciBridge From(PciBridgeInfo b) => new(new QmpPciBridgeBus(b.Primary, b.Secondary, b.Subordinate,
        new QmpPciRange(b.Io.Base, b.Io.Limit), new QmpPciRange(b.Memory.Base, b.Memory.Limit),
        new QmpPciRange(b.Prefetchable.Base, b.Prefetchable.Limit)), QmpPciDevice.FromAll(b.Devices));
}

/// <summary>QEMU's PciBusInfo: the bridge's primary bus (number), secondary and subordinate bus numbers and windows.</summary>
public sealed record QmpPciBridgeBus(int Number, int Secondary, int Subordinate, QmpPciRange IoRange, QmpPciRange MemoryRange,
    QmpPciRange PrefetchableRange) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("number", Number);
        w.WriteNumber("secondary", Secondary);
        w.WriteNumber("subordinate", Subordinate);
        QmpJson.WriteObject(w, "io_range", IoRange);
        QmpJson.WriteObject(w, "memory_range", MemoryRange);
        QmpJson.WriteObject(w, "prefetchable_range", PrefetchableRange);
        w.WriteEndObject();
    }
}

/// <summary>A window: its first and last address (a closed window has its base above its limit).</summary>
public sealed record QmpPciRange(ulong Base, ulong Limit) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("base", Base);
        w.WriteNumber("limit", Limit);
        w.WriteEndObject();
    }
}

/// <summary>The class (base class and subclass) and, for the classes this machine's functions have and QEMU names,
/// its description.</summary>
public sealed record QmpPciClass(string? Desc, int Class) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        if (Desc is not null) w.WriteString("desc", Desc);
        w.WriteNumber("class", Class);
        w.WriteEndObject();
    }

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

public sealed record QmpPciId(int Device, int Vendor, int Subsystem, int SubsystemVendor) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("device", Device);
        w.WriteNumber("vendor", Vendor);
        w.WriteNumber("subsystem", Subsystem);
        w.WriteNumber("subsystem-vendor", SubsystemVendor);
        w.WriteEndObject();
    }
}

/// <summary>A BAR: "io" or "memory", the address it decodes (2^64-1 when it decodes nothing, as QEMU), its size, and
/// for memory whether it is prefetchable and 64-bit.</summary>
public sealed record QmpPciRegion(int Bar, string Type, ulong Address, ulong Size, bool? Prefetch, bool? MemType64) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("bar", Bar);
        w.WriteString("type", Type);
        w.WriteNumber("address", Address);
        w.WriteNumber("size", Size);
        if (Prefetch is { } prefetch) w.WriteBoolean("prefetch", prefetch);
        if (MemType64 is { } is64) w.WriteBoolean("mem_type_64", is64);
        w.WriteEndObject();
    }

    public static QmpPciRegion From(PciRegionInfo r) => r.Kind == PciBarKind.Io
        ? new(r.Bar, "io", r.Address, r.Size, null, null)
        : new(r.Bar, "memory", r.Address, r.Size, false, r.Kind == PciBarKind.Memory64);

    /// <summary>Each of <paramref name="regions"/>, in order.</summary>
    internal static QmpPciRegion[] FromAll(IReadOnlyList<PciRegionInfo> regions)
    {
        var result = new QmpPciRegion[regions.Count];
        for (int i = 0; i < result.Length; i++) result[i] = From(regions[i]);
        return result;
    }
}
