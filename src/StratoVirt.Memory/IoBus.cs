namespace StratoVirt.Memory;

/// <summary>
/// An address space of device ranges (one for port I/O, one for MMIO). Lookups are a binary search over a
/// sorted array, so dispatching an exit allocates nothing.
/// </summary>
public sealed class IoBus
{
    private readonly record struct Entry(ulong Base, ulong Length, IBusDevice Device);

    private Entry[] _entries = [];
    private readonly Lock _gate = new();

    public string Name { get; }

    public IoBus(string name) => Name = name;

    /// <summary>Adds a device at [base, base+length); overlapping ranges are refused.</summary>
    public void Register(ulong @base, ulong length, IBusDevice device)
    {
        if (length == 0 || @base + length < @base)
            throw new ArgumentException($"{Name} range 0x{@base:x}+0x{length:x} is invalid");
        lock (_gate)
        {
            foreach (var e in _entries)
            {
                if (@base < e.Base + e.Length && e.Base < @base + length)
                    throw new ArgumentException(
                        $"{Name} range 0x{@base:x}+0x{length:x} overlaps 0x{e.Base:x}+0x{e.Length:x}");
            }
            var next = new Entry[_entries.Length + 1];
            _entries.CopyTo(next, 0);
            next[^1] = new Entry(@base, length, device);
            Array.Sort(next, (a, b) => a.Base.CompareTo(b.Base));
            _entries = next; // readers see either the old or the new array, never a torn one
        }
    }

    /// <summary>Removes the device registered at <paramref name="base"/>; returns whether one was there.</summary>
    public bool Unregister(ulong @base)
    {
        lock (_gate)
        {
            int i = Array.FindIndex(_entries, e => e.Base == @base);
            if (i < 0) return false;
            var next = new Entry[_entries.Length - 1];
            Array.Copy(_entries, 0, next, 0, i);
            Array.Copy(_entries, i + 1, next, i, _entries.Length - i - 1);
            _entries = next;
            return true;
        }
    }

    private bool Find(ulong address, int size, out IBusDevice device, out ulong offset)
    {
        var entries = _entries;
        int lo = 0, hi = entries.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            ref readonly var e = ref entries[mid];
            if (address < e.Base) hi = mid - 1;
            else if (address - e.Base >= e.Length) lo = mid + 1;
            else
            {
                offset = address - e.Base;
                if (offset + (ulong)size > e.Length) break; // access straddles the end of the range
                device = e.Device;
                return true;
            }
        }
        device = null!;
        offset = 0;
        return false;
    }

    /// <summary>Reads from the device at <paramref name="address"/>; unclaimed addresses read as all ones.</summary>
    public bool Read(ulong address, Span<byte> data)
    {
        if (Find(address, data.Length, out var device, out var offset))
        {
            device.Read(offset, data);
            return true;
        }
        data.Fill(0xff);
        return false;
    }

    /// <summary>Writes to the device at <paramref name="address"/>; writes to unclaimed addresses are dropped.</summary>
    public bool Write(ulong address, ReadOnlySpan<byte> data)
    {
        if (!Find(address, data.Length, out var device, out var offset)) return false;
        device.Write(offset, data);
        return true;
    }
}
