using System.Buffers.Binary;

namespace StratoVirt.Devices.Pci;

/// <summary>What a base address register decodes: a 32-bit or 64-bit memory range or an I/O port range.</summary>
public enum PciBarKind { Memory32, Memory64, Io }

/// <summary>One base address register as the device declared it, and where the guest put it.</summary>
public readonly record struct PciBar(int Index, PciBarKind Kind, ulong Size);

/// <summary>
/// A PCI function's configuration space (256 bytes, or 4096 for PCI Express) with the write semantics of the
/// hardware: bits the guest may change, bits it clears by writing 1 (status), bits that never change; BARs that
/// answer the all-ones sizing probe with their size; a capability list. Not thread-safe: the bus serialises access.
/// </summary>
public sealed class PciConfigSpace
{
    public const int ConventionalSize = 256;
    public const int ExpressSize = 4096;

    public const int VendorId = 0x00, DeviceId = 0x02, Command = 0x04, Status = 0x06, RevisionId = 0x08;
    public const int ClassCode = 0x09, HeaderType = 0x0E, Bar0 = 0x10, SubsystemVendorId = 0x2C, SubsystemId = 0x2E;
    public const int CapabilitiesPointer = 0x34, InterruptLine = 0x3C, InterruptPin = 0x3D;
    public const int BarCount = 6;

    // A type 1 (PCI-to-PCI bridge) header: bus numbers, the windows it forwards, bridge control.
    public const int PrimaryBus = 0x18, SecondaryBus = 0x19, SubordinateBus = 0x1A, IoBase = 0x1C, IoLimit = 0x1D;
    public const int SecondaryStatus = 0x1E, MemoryBase = 0x20, MemoryLimit = 0x22, PrefetchBase = 0x24, PrefetchLimit = 0x26;
    public const int PrefetchBaseUpper = 0x28, PrefetchLimitUpper = 0x2C, BridgeControl = 0x3E;
    public const byte HeaderTypeBridge = 1;

    public const ushort CommandIo = 1 << 0, CommandMemory = 1 << 1, CommandBusMaster = 1 << 2;
    public const ushort CommandParity = 1 << 6, CommandSerr = 1 << 8, CommandInterruptDisable = 1 << 10;
    public const ushort StatusInterrupt = 1 << 3, StatusCapabilities = 1 << 4;
    /// <summary>Error bits of the status register: master data parity, target/master aborts, SERR, parity.</summary>
    public const ushort StatusErrors = (1 << 8) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15);

    private const int FirstCapability = 0x40;

    private readonly byte[] _data;
    private readonly byte[] _writable;
    private readonly byte[] _clearOnWrite;
    private readonly PciBar?[] _bars = new PciBar?[BarCount];
    private int _nextCapability = FirstCapability;
    private int _lastCapability;

    /// <summary>A type-0 header with the given identity; <paramref name="classCode"/> is base, sub and interface
    /// (0x010000 is a SCSI controller).</summary>
    public PciConfigSpace(int size, ushort vendor, ushort device, uint classCode, byte revision = 0,
        bool multiFunction = false)
    {
        if (size is not (ConventionalSize or ExpressSize))
            throw new ArgumentOutOfRangeException(nameof(size), "configuration space is 256 or 4096 bytes");
        _data = new byte[size];
        _writable = new byte[size];
        _clearOnWrite = new byte[size];
        SetU16(VendorId, vendor);
        SetU16(DeviceId, device);
        _data[RevisionId] = revision;
        _data[ClassCode] = (byte)classCode;
        _data[ClassCode + 1] = (byte)(classCode >> 8);
        _data[ClassCode + 2] = (byte)(classCode >> 16);
        _data[HeaderType] = multiFunction ? (byte)0x80 : (byte)0;
        SetWritableU16(Command, CommandIo | CommandMemory | CommandBusMaster | CommandParity | CommandSerr
            | CommandInterruptDisable);
        BinaryPrimitives.WriteUInt16LittleEndian(_clearOnWrite.AsSpan(Status), StatusErrors);
        _writable[InterruptLine] = 0xFF;
    }

    public int Size => _data.Length;

    /// <summary>Bit 7 of the header type: the other functions of this slot are probed.</summary>
    public bool IsMultiFunction => (_data[HeaderType] & 0x80) != 0;

    /// <summary>Whether the header is a PCI-to-PCI bridge's (type 1).</summary>
    public bool IsBridge => (_data[HeaderType] & 0x7F) == HeaderTypeBridge;

    public ushort CommandValue => GetU16(Command);

    /// <summary>The BARs the device declared, by index (a 64-bit BAR takes its index and the next).</summary>
    public IEnumerable<PciBar> Bars
    {
        get
        {
            foreach (var b in _bars)
                if (b is { } bar) yield return bar;
        }
    }

    /// <summary>Reads <paramref name="data"/>.Length bytes at <paramref name="offset"/>; outside the space reads
    /// all ones.</summary>
    public void Read(int offset, Span<byte> data)
    {
        if (offset < 0 || offset > _data.Length - data.Length) { data.Fill(0xFF); return; }
        _data.AsSpan(offset, data.Length).CopyTo(data);
    }

    /// <summary>A guest write: writable bits take the new value, write-1-to-clear bits clear where a 1 is written,
    /// the rest stay. Outside the space it is dropped.</summary>
    public void Write(int offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || offset > _data.Length - data.Length) return;
        for (int i = 0; i < data.Length; i++)
        {
            int at = offset + i;
            byte w = _writable[at], c = _clearOnWrite[at];
            _data[at] = (byte)((_data[at] & ~w & ~(data[i] & c)) | (data[i] & w));
        }
    }

    /// <summary>The power-on state (a reset): every bit the guest may write or clear goes back to zero (command,
    /// BAR addresses, interrupt line, status errors, capability controls such as MSI-X enable); what the device
    /// declared (identity, BAR types, capabilities) stays.</summary>
    public void Reset()
    {
        for (int i = 0; i < _data.Length; i++) _data[i] &= (byte)~(_writable[i] | _clearOnWrite[i]);
    }

    public byte GetU8(int offset) => _data[offset];

    public ushort GetU16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_data.AsSpan(offset));

    public uint GetU32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_data.AsSpan(offset));

    /// <summary>Sets a register as the device (not the guest) sees it, whatever its write mask.</summary>
    public void SetU16(int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(_data.AsSpan(offset), value);

    public void SetU32(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_data.AsSpan(offset), value);

    public void SetU64(int offset, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(_data.AsSpan(offset), value);

    public void SetU8(int offset, byte value) => _data[offset] = value;

    /// <summary>Lets the guest change the bits of <paramref name="mask"/> at <paramref name="offset"/>.</summary>
    public void SetWritableU16(int offset, ushort mask) =>
        BinaryPrimitives.WriteUInt16LittleEndian(_writable.AsSpan(offset), mask);

    public void SetWritableU32(int offset, uint mask) =>
        BinaryPrimitives.WriteUInt32LittleEndian(_writable.AsSpan(offset), mask);

    public void SetWritableU8(int offset, byte mask) => _writable[offset] = mask;

    /// <summary>Lets the guest clear the bits of <paramref name="mask"/> at <paramref name="offset"/> by writing 1s.</summary>
    public void SetClearOnWriteU16(int offset, ushort mask) =>
        BinaryPrimitives.WriteUInt16LittleEndian(_clearOnWrite.AsSpan(offset), mask);

    /// <summary>Declares BAR <paramref name="index"/>: <paramref name="size"/> is a power of two (at least 16 bytes
    /// of memory or 4 ports). The address bits below the size are read-only zeros, so writing all ones and reading
    /// back gives the size.</summary>
    public void AddBar(int index, PciBarKind kind, ulong size)
    {
        int slots = kind == PciBarKind.Memory64 ? 2 : 1;
        if (index < 0 || index + slots > BarCount) throw new ArgumentOutOfRangeException(nameof(index));
        ulong minimum = kind == PciBarKind.Io ? 4UL : 16UL;
        if (size < minimum || (size & (size - 1)) != 0 || (kind != PciBarKind.Memory64 && size > 1UL << 31)
            || (kind == PciBarKind.Io && size > 256))
            throw new ArgumentOutOfRangeException(nameof(size), $"BAR size 0x{size:x} is not a power of two in range");
        if (_bars[index] is not null || (slots == 2 && _bars[index + 1] is not null))
            throw new InvalidOperationException($"BAR {index} is declared twice");
        _bars[index] = new PciBar(index, kind, size);
        int offset = Bar0 + 4 * index;
        ulong mask = ~(size - 1);
        switch (kind)
        {
            case PciBarKind.Io:
                SetU32(offset, 1); // I/O space indicator
                SetWritableU32(offset, (uint)mask & 0xFFFF_FFFC);
                break;
            case PciBarKind.Memory32:
                SetU32(offset, 0);
                SetWritableU32(offset, (uint)mask & 0xFFFF_FFF0);
                break;
            case PciBarKind.Memory64:
                SetU32(offset, 0b100); // 64-bit type
                SetWritableU32(offset, (uint)mask & 0xFFFF_FFF0);
                SetWritableU32(offset + 4, (uint)(mask >> 32));
                break;
        }
    }

    /// <summary>The address BAR <paramref name="index"/> holds now (type bits removed).</summary>
    public ulong BarAddress(int index)
    {
        var bar = _bars[index] ?? throw new ArgumentOutOfRangeException(nameof(index), $"BAR {index} is not declared");
        int offset = Bar0 + 4 * index;
        return bar.Kind switch
        {
            PciBarKind.Io => GetU32(offset) & 0xFFFF_FFFC,
            PciBarKind.Memory32 => GetU32(offset) & 0xFFFF_FFF0,
            _ => (GetU32(offset) & 0xFFFF_FFF0) | ((ulong)GetU32(offset + 4) << 32),
        };
    }

    /// <summary>Whether the guest lets the BAR decode (command register I/O or memory enable).</summary>
    public bool BarDecodes(PciBar bar) =>
        (CommandValue & (bar.Kind == PciBarKind.Io ? CommandIo : CommandMemory)) != 0;

    /// <summary>Appends a capability of <paramref name="length"/> bytes (ID and next pointer included) to the
    /// list; returns its offset.</summary>
    public int AddCapability(byte id, int length)
    {
        int offset = (_nextCapability + 3) & ~3;
        if (length < 2 || offset + length > ConventionalSize)
            throw new InvalidOperationException($"capability 0x{id:x2} of {length} bytes does not fit the configuration space");
        _data[offset] = id;
        _data[offset + 1] = 0;
        if (_lastCapability == 0) _data[CapabilitiesPointer] = (byte)offset;
        else _data[_lastCapability + 1] = (byte)offset;
        _lastCapability = offset;
        _nextCapability = offset + length;
        SetU16(Status, (ushort)(GetU16(Status) | StatusCapabilities));
        return offset;
    }

    /// <summary>Whether a write at [offset, offset+length) touches the command register or a BAR, which can
    /// move or switch the device's ranges.</summary>
    public static bool AffectsDecoding(int offset, int length) =>
        offset < Bar0 + 4 * BarCount && offset + length > Command && !(offset >= Status && offset + length <= Bar0);
}
