using System.Buffers.Binary;

namespace StratoVirt.Boot;

/// <summary>The BIOS e820 memory map handed to Linux in the zero page.</summary>
public sealed class E820Map
{
    public const uint Ram = 1;
    public const uint Reserved = 2;
    public const int MaxEntries = 128;
    public const int EntrySize = 20;

    private readonly List<(ulong Address, ulong Size, uint Type)> _entries = [];

    public IReadOnlyList<(ulong Address, ulong Size, uint Type)> Entries => _entries;

    public void Add(ulong address, ulong size, uint type)
    {
        if (size == 0) return;
        if (_entries.Count == MaxEntries) throw new BootException("e820 map is full");
        _entries.Add((address, size, type));
    }

    /// <summary>The map for a guest with the given RAM regions (from Layout.RamRegions).</summary>
    public static E820Map ForRam(IReadOnlyList<(ulong Address, ulong Size)> ram)
    {
        var map = new E820Map();
        foreach (var (address, size) in ram)
        {
            if (address == 0)
            {
                // Low RAM stops at the EBDA; the legacy BIOS area below 1 MiB holds our ACPI and MP tables.
                map.Add(0, Layout.EbdaStart, Ram);
                map.Add(Layout.EbdaStart, Layout.BiosAreaStart - Layout.EbdaStart, Reserved);
                map.Add(0xE0000, Layout.HighMemory - 0xE0000, Reserved);
                if (size > Layout.HighMemory) map.Add(Layout.HighMemory, size - Layout.HighMemory, Ram);
            }
            else
            {
                map.Add(address, size, Ram);
            }
        }
        return map;
    }

    /// <summary>Writes the entries in the zero page's e820_table layout.</summary>
    public void WriteTo(Span<byte> table)
    {
        for (int i = 0; i < _entries.Count; i++)
        {
            var slot = table.Slice(i * EntrySize, EntrySize);
            BinaryPrimitives.WriteUInt64LittleEndian(slot, _entries[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(slot[8..], _entries[i].Size);
            BinaryPrimitives.WriteUInt32LittleEndian(slot[16..], _entries[i].Type);
        }
    }
}
