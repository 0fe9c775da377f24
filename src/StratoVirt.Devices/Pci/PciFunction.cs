using StratoVirt.Memory;

namespace StratoVirt.Devices.Pci;

/// <summary>
/// One function of a PCI device: its configuration space and the bus devices behind its BARs. The bus calls it
/// under its lock, one access at a time.
/// </summary>
public abstract class PciFunction(PciConfigSpace config)
{
    /// <summary>The name in messages: the -device id, or what the function is.</summary>
    public abstract string Name { get; }

    public PciConfigSpace Config { get; } = config;

    /// <summary>The -device id of the device behind the function; empty for the machine's own (the chipset).</summary>
    public virtual string QdevId => "";

    /// <summary>The registers behind BAR <paramref name="index"/>, or null for a BAR that only reserves space.</summary>
    public virtual IBusDevice? BarRegion(int index) => null;

    /// <summary>The bus mapped BAR <paramref name="index"/> at <paramref name="address"/>, or unmapped it (null):
    /// a function whose registers the host side also binds by address (KVM ioeventfds) follows it here.</summary>
    public virtual void BarMapped(int index, ulong? address) { }

    /// <summary>A guest read of the configuration space; functions with live registers answer them here.</summary>
    public virtual void ReadConfig(int offset, Span<byte> data) => Config.Read(offset, data);

    /// <summary>A guest write of the configuration space, after the masks of <see cref="Config"/> applied it.</summary>
    public virtual void WriteConfig(int offset, ReadOnlySpan<byte> data) => Config.Write(offset, data);

    /// <summary>A reset of the function (the machine's reset): its configuration space goes back to the power-on
    /// state; a function with live state behind it (a device, MSI-X) resets that too. The bus then unmaps the
    /// BARs, which no longer decode.</summary>
    public virtual void Reset() => Config.Reset();

    /// <summary>A bridge's bus numbered <paramref name="number"/> (its secondary bus or one below it, as the guest
    /// programmed its bus numbers); null for a function that forwards nothing there.</summary>
    public virtual PciBus? BusBehind(int number) => null;

    /// <summary>What query-pci shows of a bridge; null for other functions.</summary>
    public virtual PciBridgeInfo? DescribeBridge() => null;
}

/// <summary>A configuration error of the PCI topology the user asked for (a taken or impossible address).</summary>
public sealed class PciException(string message) : Sys.VmmException(message);
