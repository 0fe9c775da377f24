using System.Globalization;
using StratoVirt.Devices.Options;

namespace StratoVirt.Devices.Pci;

/// <summary>Where a -device goes on a PCI bus: bus=, addr= (slot, function; a null slot lets the machine pick the
/// first free one) and multifunction=.</summary>
public sealed record PciPlacement(string Bus, int? Slot, int Function, bool MultiFunction)
{
    public const string RootBus = "pcie.0";

    /// <summary>Reads bus=, addr= ("0x3", "3", "0x3.1": slot in hex, function 0-7) and multifunction= of a
    /// -device option; anything else is a UsageException naming <paramref name="driver"/>. Whether the bus exists
    /// is the caller's to check.</summary>
    public static PciPlacement Parse(OptionValue v, string driver)
    {
        string bus = v.Get("bus") ?? RootBus;
        bool multi = v.GetBool("multifunction", false);
        if (v.Get("addr") is not { } addr) return new PciPlacement(bus, null, 0, multi);
        string[] parts = addr.Split('.');
        string slotText = parts[0].StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? parts[0][2..] : parts[0];
        if (parts.Length > 2
            || !int.TryParse(slotText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int slot)
            || slot is < 0 or > 0x1F
            || (parts.Length == 2 && !(int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int f) && f <= 7)))
            throw new UsageException($"option -device: {driver} addr={addr}: not a PCI address (slot 0x0 to 0x1f, optionally .function 0 to 7)");
        int function = parts.Length == 2 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : 0;
        return new PciPlacement(bus, slot, function, multi);
    }
}

/// <summary>A -device pcie-root-port: its id (which names its secondary bus), port number, chassis and place on
/// pcie.0.</summary>
public sealed record PcieRootPortConfig(string Id, byte Port, byte Chassis, PciPlacement Placement);
