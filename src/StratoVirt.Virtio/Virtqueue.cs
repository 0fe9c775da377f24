using System.Buffers.Binary;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Virtio;

/// <summary>A guest's misprogrammed virtqueue or descriptor chain; the device that meets one stops (NEEDS_RESET).</summary>
public sealed class VirtqueueException(string message) : VmmException(message);

/// <summary>
/// A split virtqueue (virtio 1.2, section 2.7) as the device sees it: the driver's configuration, set through the
/// transport, and the device's side of the rings. Every index and address the guest supplies is checked before use.
/// </summary>
public sealed class Virtqueue
{
    private const ushort DescNext = 1, DescWrite = 2, DescIndirect = 4;
    private const ushort AvailNoInterrupt = 1;
    private const int DescriptorSize = 16;

    private GuestMemory? _memory;
    private bool _eventIdx, _indirect;
    private ushort _nextAvail, _nextUsed, _usedAtLastSignal;

    public Virtqueue(int index, ushort maxSize)
    {
        Index = index;
        MaxSize = maxSize;
        Size = maxSize;
    }

    public int Index { get; }
    public ushort MaxSize { get; }

    // The driver's configuration (QueueNum, QueueReady, QueueDesc/Driver/Device).
    public ushort Size { get; set; }
    public bool Ready { get; set; }
    public ulong DescTable { get; set; }
    public ulong AvailRing { get; set; }
    public ulong UsedRing { get; set; }

    /// <summary>Whether the queue was validated and can be used (between activation and reset).</summary>
    public bool Active => _memory is not null;

    /// <summary>Checks the driver's configuration and starts using the rings; throws VirtqueueException if they are bad.</summary>
    public void Activate(GuestMemory memory, ulong features)
    {
        if (Size == 0 || Size > MaxSize || (Size & (Size - 1)) != 0)
            throw new VirtqueueException($"queue {Index}: size {Size} is not a power of two up to {MaxSize}");
        Check(memory, DescTable, (ulong)DescriptorSize * Size, 16, "descriptor table");
        Check(memory, AvailRing, 6 + 2UL * Size, 2, "available ring");
        Check(memory, UsedRing, 6 + 8UL * Size, 4, "used ring");
        _eventIdx = (features & VirtioFeature.RingEventIdx) != 0;
        _indirect = (features & VirtioFeature.RingIndirectDesc) != 0;
        _nextAvail = _nextUsed = _usedAtLastSignal = 0;
        _memory = memory;
    }

    private void Check(GuestMemory memory, ulong address, ulong length, ulong alignment, string what)
    {
        if (address % alignment != 0)
            throw new VirtqueueException($"queue {Index}: {what} at 0x{address:x} is not {alignment}-byte aligned");
        if (!memory.Contains(address, length))
            throw new VirtqueueException($"queue {Index}: {what} at 0x{address:x} (+{length}) is outside guest RAM");
    }

    /// <summary>The device's positions in the rings: the next available entry to pop, the next used entry to fill,
    /// and the used index the driver last heard about (for saved state).</summary>
    public (ushort NextAvail, ushort NextUsed, ushort SignalledUsed) Positions => (_nextAvail, _nextUsed, _usedAtLastSignal);

    /// <summary>Continues an activated queue from saved <see cref="Positions"/>.</summary>
    public void RestorePositions(ushort nextAvail, ushort nextUsed, ushort signalledUsed) =>
        (_nextAvail, _nextUsed, _usedAtLastSignal) = (nextAvail, nextUsed, signalledUsed);

    /// <summary>Back to the state after device reset.</summary>
    public void Reset()
    {
        _memory = null;
        Ready = false;
        Size = MaxSize;
        DescTable = AvailRing = UsedRing = 0;
        _nextAvail = _nextUsed = _usedAtLastSignal = 0;
    }

    /// <summary>The rings' memory; a queue the driver did not set up (it may leave any queue unused) is a guest
    /// error only when a device tries to return a buffer on it.</summary>
    private GuestMemory Mem => _memory ?? throw new VirtqueueException($"queue {Index} is not ready");

    private ushort AvailIdx() => Mem.ReadUInt16(AvailRing + 2);

    /// <summary>Whether the driver has made buffers available that were not popped yet; never for a queue the
    /// driver did not make ready.</summary>
    public bool HasAvailable()
    {
        if (!Active) return false;
        ushort pending = (ushort)(AvailIdx() - _nextAvail);
        if (pending > Size)
            throw new VirtqueueException($"queue {Index}: available index moved {pending} entries ahead of a {Size}-entry ring");
        return pending != 0;
    }

    /// <summary>
    /// Takes the next available chain into <paramref name="chain"/>; false when there is none. With EVENT_IDX, finding
    /// the ring empty asks the driver to notify on its next buffer (avail_event), then re-checks so that a buffer
    /// added meanwhile is not missed. Only then: while the device is still popping, the driver's further buffers
    /// need no notification, since the device reaches them on its own (each one would cost the guest an exit).
    /// </summary>
    public bool Pop(DescriptorChain chain)
    {
        if (!HasAvailable())
        {
            if (!_eventIdx) return false;
            SetAvailEvent();
            Interlocked.MemoryBarrier(); // the avail_event store must be visible before the index is read again
            if (!HasAvailable()) return false;
        }
        Interlocked.MemoryBarrier(); // ring entries are read after the index that published them
        ushort head = Mem.ReadUInt16(AvailRing + 4 + 2UL * (ushort)(_nextAvail % Size));
        _nextAvail++;
        chain.Load(this, Mem, head);
        return true;
    }

    /// <summary>Gives back the last popped chain unused (e.g. no room for it yet): it is popped again next time.</summary>
    public void Unpop() => _nextAvail--;

    private void SetAvailEvent() => Mem.WriteUInt16(UsedRing + 4 + 8UL * Size, _nextAvail);

    /// <summary>Returns a chain to the driver with the number of bytes written into it.</summary>
    public void AddUsed(ushort head, uint written)
    {
        var mem = Mem;
        var entry = mem.GetSpan(UsedRing + 4 + 8UL * (ushort)(_nextUsed % Size), 8);
        BinaryPrimitives.WriteUInt32LittleEndian(entry, head);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[4..], written);
        _nextUsed++;
        Interlocked.MemoryBarrier(); // the entry is visible before the index that publishes it
        mem.WriteUInt16(UsedRing + 2, _nextUsed);
    }

    /// <summary>Whether the driver wants an interrupt for the chains used since the last time this said yes.</summary>
    public bool NeedsInterrupt()
    {
        if (!Active) return false;
        Interlocked.MemoryBarrier(); // the used index is visible before the driver's suppression fields are read
        ushort old = _usedAtLastSignal, now = _nextUsed;
        if (old == now) return false;
        _usedAtLastSignal = now;
        if (_eventIdx)
        {
            ushort usedEvent = Mem.ReadUInt16(AvailRing + 4 + 2UL * Size);
            return (ushort)(now - usedEvent - 1) < (ushort)(now - old);
        }
        return (Mem.ReadUInt16(AvailRing) & AvailNoInterrupt) == 0;
    }

    internal (ulong Address, uint Length, ushort Flags, ushort Next) ReadDescriptor(GuestMemory mem, ulong table, ushort i)
    {
        var d = mem.GetSpan(table + (ulong)DescriptorSize * i, DescriptorSize);
        return (BinaryPrimitives.ReadUInt64LittleEndian(d), BinaryPrimitives.ReadUInt32LittleEndian(d[8..]),
            BinaryPrimitives.ReadUInt16LittleEndian(d[12..]), BinaryPrimitives.ReadUInt16LittleEndian(d[14..]));
    }

    internal bool IndirectAllowed => _indirect;
    internal const ushort FlagNext = DescNext, FlagWrite = DescWrite, FlagIndirect = DescIndirect;
}

/// <summary>
/// One descriptor chain popped from a virtqueue, checked: every buffer lies inside guest RAM, device-readable
/// buffers come before device-writable ones, and the chain (indirect table included) is no longer than the queue.
/// Zero-length descriptors carry nothing and are left out, whatever address they name. The arrays are allocated
/// once per chain object, so popping allocates nothing.
/// </summary>
public sealed class DescriptorChain
{
    private readonly ulong[] _address;
    private readonly uint[] _length;
    private GuestMemory? _memory;

    public DescriptorChain(int capacity = 256)
    {
        _address = new ulong[capacity];
        _length = new uint[capacity];
    }

    public ushort Head { get; private set; }
    /// <summary>Buffers in the chain; the first <see cref="ReadableCount"/> are device-readable, the rest writable.</summary>
    public int Count { get; private set; }
    public int ReadableCount { get; private set; }
    public ulong ReadableLength { get; private set; }
    public ulong WritableLength { get; private set; }

    public ulong Address(int i) => _address[i];
    public uint Length(int i) => _length[i];

    internal void Load(Virtqueue queue, GuestMemory memory, ushort head)
    {
        _memory = memory;
        Head = head;
        Count = ReadableCount = 0;
        ReadableLength = WritableLength = 0;
        int limit = Math.Min(queue.Size, _address.Length);
        if (head >= queue.Size) throw Bad(queue, $"head index {head} is outside the {queue.Size}-entry table");

        ulong table = queue.DescTable;
        ushort tableSize = queue.Size, i = head;
        bool indirect = false, writable = false;
        // Every descriptor visited counts against limit, so a chain whose next indices loop ends with an error.
        int visited = 0;
        while (true)
        {
            var (address, length, flags, next) = queue.ReadDescriptor(memory, table, i);
            if ((flags & Virtqueue.FlagIndirect) != 0)
            {
                if (!queue.IndirectAllowed) throw Bad(queue, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
                if (indirect) throw Bad(queue, "an indirect table points at another indirect table");
                if ((flags & Virtqueue.FlagNext) != 0) throw Bad(queue, "indirect descriptor also has NEXT set");
                if (length == 0 || length % 16 != 0 || length / 16 > (uint)limit)
                    throw Bad(queue, $"indirect table length {length} is not 16-byte entries up to the queue size");
                if (!memory.Contains(address, length))
                    throw Bad(queue, $"indirect table at 0x{address:x} (+{length}) is outside guest RAM");
                table = address;
                tableSize = (ushort)(length / 16);
                indirect = true;
                i = 0;
                continue;
            }
            if (visited++ >= limit) throw Bad(queue, "the chain loops or is longer than the queue");
            if (length != 0 && !memory.Contains(address, length))
                throw Bad(queue, $"buffer at 0x{address:x} (+{length}) is outside guest RAM");
            if ((flags & Virtqueue.FlagWrite) != 0)
            {
                writable = true;
                WritableLength += length;
            }
            else
            {
                if (writable) throw Bad(queue, "a device-readable buffer follows a device-writable one");
                ReadableLength += length;
            }
            if (length != 0)
            {
                if (!writable) ReadableCount++;
                _address[Count] = address;
                _length[Count] = length;
                Count++;
            }
            if ((flags & Virtqueue.FlagNext) == 0) return;
            if (next >= tableSize) throw Bad(queue, $"next index {next} is outside the {tableSize}-entry table");
            i = next;
        }
    }

    private static VirtqueueException Bad(Virtqueue queue, string what) =>
        new($"queue {queue.Index}: malformed descriptor chain: {what}");

    private GuestMemory Mem => _memory ?? throw new InvalidOperationException("no chain loaded");

    /// <summary>The host memory of buffer <paramref name="i"/> (checked when the chain was loaded).</summary>
    public Span<byte> Buffer(int i) => Mem.GetSpan(_address[i], _length[i]);

    /// <summary>Copies device-readable bytes from <paramref name="offset"/> into <paramref name="destination"/>;
    /// returns how many there were.</summary>
    public int Read(ulong offset, Span<byte> destination)
    {
        int copied = 0;
        for (int i = 0; i < ReadableCount && copied < destination.Length; i++)
        {
            uint len = _length[i];
            if (offset >= len) { offset -= len; continue; }
            var src = Mem.GetSpan(_address[i] + offset, len - offset);
            int n = Math.Min(src.Length, destination.Length - copied);
            src[..n].CopyTo(destination[copied..]);
            copied += n;
            offset = 0;
        }
        return copied;
    }

    /// <summary>Copies <paramref name="source"/> into the device-writable buffers from <paramref name="offset"/>;
    /// returns how many bytes fitted.</summary>
    public int Write(ulong offset, ReadOnlySpan<byte> source)
    {
        int copied = 0;
        for (int i = ReadableCount; i < Count && copied < source.Length; i++)
        {
            uint len = _length[i];
            if (offset >= len) { offset -= len; continue; }
            var dst = Mem.GetSpan(_address[i] + offset, len - offset);
            int n = Math.Min(dst.Length, source.Length - copied);
            source.Slice(copied, n).CopyTo(dst);
            copied += n;
            offset = 0;
        }
        return copied;
    }
}
