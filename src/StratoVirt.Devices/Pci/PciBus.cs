using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Devices.Pci;

/// <summary>
/// A PCI bus of 32 slots with 8 functions each, reached by configuration accesses (from 0xCF8/0xCFC or ECAM).
/// It maps each function's BARs onto the port-I/O and MMIO buses where the guest programs them, whenever the
/// command register enables decoding, and unmaps them when the guest moves or disables them.
/// Threading: any vCPU may access it; one lock serialises configuration accesses and remapping.
/// </summary>
public sealed class PciBus(string name, IoBus pio, IoBus mmio)
{
    public const int Slots = 32;
    public const int FunctionsPerSlot = 8;

    private readonly PciFunction?[] _functions = new PciFunction?[Slots * FunctionsPerSlot];
    private readonly Dictionary<(PciFunction Function, int Bar), ulong> _mapped = [];
    private readonly Lock _gate = new();

    public string Name { get; } = name;

    /// <summary>The functions attached, with their slot and function numbers.</summary>
    public IEnumerable<(int Slot, int Function, PciFunction Device)> Functions
    {
        get
        {
            for (int devfn = 0; devfn < _functions.Length; devfn++)
                if (_functions[devfn] is { } f) yield return (devfn >> 3, devfn & 7, f);
        }
    }

    /// <summary>The function at <paramref name="slot"/>.<paramref name="function"/>; null when none is there or the
    /// address is out of range.</summary>
    public PciFunction? FunctionAt(int slot, int function) =>
        slot is >= 0 and < Slots && function is >= 0 and < FunctionsPerSlot ? _functions[slot * FunctionsPerSlot + function] : null;

    /// <summary>The attached function at the lowest address; null when the bus is empty.</summary>
    public PciFunction? FirstFunction
    {
        get
        {
            foreach (var f in _functions)
                if (f is not null) return f;
            return null;
        }
    }

    /// <summary>Puts <paramref name="device"/> at <paramref name="slot"/>.<paramref name="function"/>.</summary>
    public void Attach(int slot, int function, PciFunction device)
    {
        if (slot is < 0 or >= Slots)
            throw new PciException($"bus {Name}: slot 0x{slot:x} is out of range (0x0 to 0x{Slots - 1:x})");
        if (function is < 0 or >= FunctionsPerSlot)
            throw new PciException($"bus {Name}: function {function} is out of range (0 to {FunctionsPerSlot - 1})");
        lock (_gate)
        {
            if (_functions[slot * FunctionsPerSlot + function] is { } taken)
                throw new PciException($"bus {Name}: address 0x{slot:x}.{function} is already used by {taken.Name}");
            _functions[slot * FunctionsPerSlot + function] = device;
        }
    }

    /// <summary>A configuration read of function <paramref name="devfn"/> on bus <paramref name="number"/>, this
    /// bus being bus 0: routed through the bridges by the bus numbers the guest gave them. A bus nobody forwards
    /// to reads as all ones.</summary>
    public void ReadConfig(int number, int devfn, int offset, Span<byte> data)
    {
        if ((number == 0 ? this : BusBehind(number)) is { } bus) bus.ReadConfig(devfn, offset, data);
        else data.Fill(0xFF);
    }

    /// <summary>A configuration write to bus <paramref name="number"/> (see <see cref="ReadConfig(int, int, int, Span{byte})"/>);
    /// a bus nobody forwards to drops it.</summary>
    public void WriteConfig(int number, int devfn, int offset, ReadOnlySpan<byte> data)
    {
        if ((number == 0 ? this : BusBehind(number)) is { } bus) bus.WriteConfig(devfn, offset, data);
    }

    /// <summary>The bus numbered <paramref name="number"/> behind one of this bus's bridges, or null.</summary>
    public PciBus? BusBehind(int number)
    {
        lock (_gate)
        {
            foreach (var f in _functions)
                if (f?.BusBehind(number) is { } bus) return bus;
        }
        return null;
    }

    /// <summary>Takes every function off the bus (a hot-unplugged card), unmapping their BARs; returns them.</summary>
    public IReadOnlyList<PciFunction> DetachAll()
    {
        var gone = new List<PciFunction>();
        lock (_gate)
        {
            for (int devfn = 0; devfn < _functions.Length; devfn++)
            {
                if (_functions[devfn] is not { } f) continue;
                foreach (var bar in f.Config.Bars) Unmap(f, bar);
                _functions[devfn] = null;
                gone.Add(f);
            }
        }
        return gone;
    }

    /// <summary>A configuration read of function <paramref name="devfn"/> (slot &lt;&lt; 3 | function); an empty
    /// function reads as all ones, which is how the guest learns that nothing is there.</summary>
    public void ReadConfig(int devfn, int offset, Span<byte> data)
    {
        lock (_gate)
        {
            if (_functions[devfn & 0xFF] is { } f) f.ReadConfig(offset, data);
            else data.Fill(0xFF);
        }
    }

    /// <summary>A configuration write; writes to empty functions are dropped.</summary>
    public void WriteConfig(int devfn, int offset, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            if (_functions[devfn & 0xFF] is not { } f) return;
            f.WriteConfig(offset, data);
            if (PciConfigSpace.AffectsDecoding(offset, data.Length)) Remap(f);
        }
    }

    /// <summary>Resets every function (a machine reset) and unmaps their BARs, as after power-on: nothing decodes
    /// until the configuration space is programmed again.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            foreach (var (_, _, f) in Functions)
            {
                f.Reset();
                Remap(f);
            }
        }
    }

    /// <summary>Each function as QMP query-pci shows it: identity, class, interrupt pin, and every BAR with the
    /// address it decodes (<see cref="PciRegionInfo.Unmapped"/> while its decoding is off or it holds 0); a bridge
    /// with its windows and the functions behind it. <paramref name="number"/> is this bus's number.</summary>
    public IReadOnlyList<PciFunctionInfo> Describe(int number = 0)
    {
        var list = new List<PciFunctionInfo>();
        lock (_gate)
        {
            foreach (var (slot, function, f) in Functions)
            {
                var c = f.Config;
                var regions = new List<PciRegionInfo>();
                foreach (var bar in c.Bars)
                {
                    regions.Add(c.BarAddress(bar.Index) is var a && a != 0 && c.BarDecodes(bar)
                        ? new PciRegionInfo(bar.Index, bar.Kind, a, bar.Size) : new PciRegionInfo(bar.Index, bar.Kind, PciRegionInfo.Unmapped, bar.Size));
                }
                bool bridge = c.IsBridge; // a type 1 header has no subsystem ids
                list.Add(new PciFunctionInfo(slot, function, c.GetU16(PciConfigSpace.VendorId), c.GetU16(PciConfigSpace.DeviceId),
                    bridge ? (ushort)0 : c.GetU16(PciConfigSpace.SubsystemVendorId), bridge ? (ushort)0 : c.GetU16(PciConfigSpace.SubsystemId),
                    c.GetU16(PciConfigSpace.ClassCode + 1), c.GetU8(PciConfigSpace.InterruptPin), c.GetU8(PciConfigSpace.InterruptLine),
                    f.QdevId, [.. regions]) { Bus = number, Bridge = f.DescribeBridge() });
            }
        }
        return list;
    }

    /// <summary>Where BAR <paramref name="bar"/> of <paramref name="function"/> is mapped now, if it is.</summary>
    public ulong? MappedAddress(PciFunction function, int bar)
    {
        lock (_gate) return _mapped.TryGetValue((function, bar), out ulong a) ? a : null;
    }

    private void Remap(PciFunction f)
    {
        foreach (var bar in f.Config.Bars)
        {
            if (f.BarRegion(bar.Index) is not { } region) continue;
            ulong address = f.Config.BarAddress(bar.Index);
            bool wanted = f.Config.BarDecodes(bar) && address != 0 && FitsAddressSpace(bar, address);
            var key = (f, bar.Index);
            bool mapped = _mapped.TryGetValue(key, out ulong current);
            if (mapped && wanted && current == address) continue;
            var space = bar.Kind == PciBarKind.Io ? pio : mmio;
            if (mapped) Unmap(f, bar);
            if (!wanted) continue;
            try
            {
                space.Register(address, bar.Size, region);
                _mapped[key] = address;
                f.BarMapped(bar.Index, address);
            }
            catch (ArgumentException e)
            {
                // The guest owns the BAR addresses; a clash is its mistake and leaves the BAR unmapped.
                Log.Warn($"{Name}: {f.Name} BAR {bar.Index} at 0x{address:x} not mapped: {e.Message}");
            }
        }
    }

    private void Unmap(PciFunction f, PciBar bar)
    {
        if (!_mapped.Remove((f, bar.Index), out ulong address)) return;
        (bar.Kind == PciBarKind.Io ? pio : mmio).Unregister(address);
        f.BarMapped(bar.Index, null);
    }

    private static bool FitsAddressSpace(PciBar bar, ulong address) => bar.Kind switch
    {
        PciBarKind.Io => address + bar.Size <= 0x1_0000,
        PciBarKind.Memory32 => address + bar.Size <= 1UL << 32,
        _ => address + bar.Size > address,
    };
}

/// <summary>A function as QMP query-pci reports it: slot and function, vendor and device ids, subsystem ids, the
/// class as base class and subclass (the config word at 0x0A), the interrupt pin (0: none, 1: INTA#) and the line
/// the guest wrote, the -device id (empty for the chipset's functions) and its BARs.</summary>
public sealed record PciFunctionInfo(int Slot, int Function, ushort VendorId, ushort DeviceId, ushort SubsystemVendorId,
    ushort SubsystemId, ushort Class, byte InterruptPin, byte InterruptLine, string QdevId, IReadOnlyList<PciRegionInfo> Regions)
{
    /// <summary>The number of the bus the function is on.</summary>
    public int Bus { get; init; }

    /// <summary>A bridge's bus numbers, windows and functions behind it; null for other functions.</summary>
    public PciBridgeInfo? Bridge { get; init; }
}

/// <summary>One BAR: its index, kind, the address it decodes and its size.</summary>
public readonly record struct PciRegionInfo(int Bar, PciBarKind Kind, ulong Address, ulong Size)
{
    /// <summary>The address of a BAR that decodes nothing (QEMU's PCI_BAR_UNMAPPED, -1 as a u64).</summary>
    public const ulong Unmapped = ulong.MaxValue;
}
