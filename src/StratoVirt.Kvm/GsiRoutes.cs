namespace StratoVirt.Kvm;

/// <summary>
/// A GSI routing table for KVM_SET_GSI_ROUTING. Setting a table replaces the kernel's whole default, so a machine
/// that adds MSI routes (for irqfds per MSI-X vector) starts from <see cref="WithIrqchipDefaults"/>: GSIs 0-15 on
/// the PICs and the IOAPIC, 16-23 on the IOAPIC alone, as KVM sets them up when the irqchip is created.
/// </summary>
public sealed class GsiRoutes
{
    /// <summary>The IOAPIC's pins: GSIs below this are the irqchip's.</summary>
    public const uint IoapicPins = 24;

    private readonly List<KvmIrqRoutingEntry> _entries = [];

    public IReadOnlyList<KvmIrqRoutingEntry> Entries => _entries;

    /// <summary>The in-kernel irqchip's own routes.</summary>
    public static GsiRoutes WithIrqchipDefaults()
    {
        var routes = new GsiRoutes();
        for (uint gsi = 0; gsi < IoapicPins; gsi++)
        {
            routes.AddIrqchip(gsi, KvmIrqRoutingEntry.IrqchipIoapic, gsi);
            if (gsi < 16)
                routes.AddIrqchip(gsi, gsi < 8 ? KvmIrqRoutingEntry.IrqchipPicMaster : KvmIrqRoutingEntry.IrqchipPicSlave, gsi % 8);
        }
        return routes;
    }

    public void AddIrqchip(uint gsi, uint irqchip, uint pin) =>
        _entries.Add(new KvmIrqRoutingEntry { Gsi = gsi, Type = KvmIrqRoutingEntry.TypeIrqchip, Irqchip = irqchip, Pin = pin });

    /// <summary>Routes <paramref name="gsi"/> (at or above <see cref="IoapicPins"/>) to an MSI message, replacing
    /// an earlier route of the same GSI (a vector whose message the guest reprogrammed).</summary>
    public void SetMsi(uint gsi, ulong address, uint data)
    {
        if (gsi < IoapicPins) throw new ArgumentOutOfRangeException(nameof(gsi), $"GSI {gsi} belongs to the irqchip");
        _entries.RemoveAll(e => e.Gsi == gsi);
        _entries.Add(new KvmIrqRoutingEntry
        {
            Gsi = gsi, Type = KvmIrqRoutingEntry.TypeMsi,
            MsiAddressLow = (uint)address, MsiAddressHigh = (uint)(address >> 32), MsiData = data,
        });
    }

    /// <summary>Drops the route of <paramref name="gsi"/> (a vector the guest masked or the device lost).</summary>
    public void Remove(uint gsi) => _entries.RemoveAll(e => e.Gsi == gsi && gsi >= IoapicPins);
}
