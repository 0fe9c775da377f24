using System.Buffers.Binary;
using System.Text;
using StratoVirt.Memory;

namespace StratoVirt.Devices.Firmware;

/// <summary>The fw_cfg item numbers the q35 machine fills (QEMU's docs/specs/fw_cfg.txt).</summary>
public static class FwCfgKey
{
    public const ushort Signature = 0x00;
    public const ushort Id = 0x01;
    public const ushort NbCpus = 0x05;
    public const ushort KernelSize = 0x08;
    public const ushort InitrdSize = 0x0B;
    public const ushort MaxCpus = 0x0F;
    public const ushort KernelData = 0x11;
    public const ushort InitrdData = 0x12;
    public const ushort CmdlineSize = 0x14;
    public const ushort CmdlineData = 0x15;
    public const ushort SetupSize = 0x17;
    public const ushort SetupData = 0x18;
    public const ushort FileDir = 0x19;
    /// <summary>Named files take the keys from here on, in the order of their names.</summary>
    public const ushort FileFirst = 0x20;
}

/// <summary>
/// QEMU's firmware configuration interface on I/O ports, as firmware (OVMF, SeaBIOS) and Linux's qemu_fw_cfg
/// driver read it: a 16-bit selector at offset 0 (port 0x510), a byte-wide data port at offset 1 (0x511) that
/// reads the selected item from its current offset on, and the DMA address register at offsets 4-11
/// (0x514-0x51B, big-endian 64-bit; writing its low half, or all 8 bytes at once, starts the transfer).
/// </summary>
/// <remarks>
/// A DMA descriptor (big-endian control, length, address) is read from guest RAM; control may select an item
/// (bits 16-31 with the select bit), then read, skip or write. Every item is read-only: a write sets the error
/// bit. A read past an item's end yields zeros, as QEMU does. The descriptor and the buffer must lie in guest
/// RAM; otherwise the transfer fails with the error bit (or, without a readable descriptor, is dropped).
/// Threading: any vCPU thread may access it; one lock guards the selection and offset.
/// </remarks>
public sealed class FwCfg : IBusDevice
{
    public const ushort PortBase = 0x510;
    /// <summary>Ports decoded: selector, data and the DMA address register.</summary>
    public const ulong Length = 12;

    private const ulong SelectorOffset = 0, DataOffset = 1, DmaHighOffset = 4, DmaLowOffset = 8;
    private const uint IdTraditional = 1, IdDma = 2;
    private const ushort WriteFlag = 0x4000; // selector bit QEMU once used for writable items
    public const uint DmaError = 0x01, DmaRead = 0x02, DmaSkip = 0x04, DmaSelect = 0x08, DmaWrite = 0x10;
    public const int FileNameSize = 56;
    private const int FileEntrySize = 64;
    private const int MaxFiles = 0x3FFF - FwCfgKey.FileFirst;
    private const int DmaChunk = 1 << 20; // bytes moved per checked span of guest RAM
    private static ReadOnlySpan<byte> DmaSignature => "QEMU CFG"u8;

    private readonly Lock _gate = new();
    private readonly GuestMemory _memory;
    private readonly Dictionary<ushort, byte[]> _items = [];
    private readonly SortedDictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private ushort _selected;
    private uint _offset;
    private uint _dmaHigh;

    /// <summary>An interface whose DMA transfers reach <paramref name="memory"/>; it has its signature, id and an
    /// empty file directory.</summary>
    public FwCfg(GuestMemory memory)
    {
        _memory = memory;
        _items[FwCfgKey.Signature] = "QEMU"u8.ToArray();
        _items[FwCfgKey.Id] = LittleEndian32(IdTraditional | IdDma);
        _items[FwCfgKey.FileDir] = new byte[4];
    }

    /// <summary>A machine reset: item 0 selected at offset 0 and no DMA address half written; the items stay.</summary>
    public void Reset()
    {
        lock (_gate) (_selected, _offset, _dmaHigh) = (0, 0, 0);
    }

    /// <summary>Sets item <paramref name="key"/> (below <see cref="FwCfgKey.FileFirst"/>).</summary>
    public void Add(ushort key, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (key is FwCfgKey.Signature or FwCfgKey.Id or FwCfgKey.FileDir || key >= FwCfgKey.FileFirst)
            throw new ArgumentException($"fw_cfg key 0x{key:x} is not a plain item", nameof(key));
        lock (_gate) _items[key] = data;
    }

    /// <summary>A 16-bit little-endian item (the CPU counts).</summary>
    public void Add(ushort key, ushort value) => Add(key, [(byte)value, (byte)(value >> 8)]);

    /// <summary>A 32-bit little-endian item (the sizes).</summary>
    public void Add(ushort key, uint value) => Add(key, LittleEndian32(value));

    /// <summary>Adds the named file; files are listed and numbered in the order of their names, as QEMU does.</summary>
    public void AddFile(string name, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        int length = Encoding.UTF8.GetByteCount(name);
        if (length == 0 || length >= FileNameSize) throw new ArgumentException($"fw_cfg file name '{name}' must be 1-55 bytes", nameof(name));
        lock (_gate)
        {
            if (_files.Count == MaxFiles) throw new ArgumentException("fw_cfg has no free file slot", nameof(name));
            if (!_files.TryAdd(name, data)) throw new ArgumentException($"fw_cfg file '{name}' exists", nameof(name));
            RebuildDirectory();
        }
    }

    /// <summary>The key a named file is reached by, or null.</summary>
    public ushort? FileKey(string name)
    {
        lock (_gate)
        {
            ushort key = FwCfgKey.FileFirst;
            foreach (string file in _files.Keys)
            {
                if (file == name) return key;
                key++;
            }
            return null;
        }
    }

    private void RebuildDirectory()
    {
        var dir = new byte[4 + _files.Count * FileEntrySize];
        BinaryPrimitives.WriteUInt32BigEndian(dir, (uint)_files.Count);
        ushort key = FwCfgKey.FileFirst;
        int at = 4;
        foreach (var (name, data) in _files)
        {
            _items[key] = data;
            BinaryPrimitives.WriteUInt32BigEndian(dir.AsSpan(at), (uint)data.Length);
            BinaryPrimitives.WriteUInt16BigEndian(dir.AsSpan(at + 4), key);
            Encoding.UTF8.GetBytes(name, dir.AsSpan(at + 8, FileNameSize));
            key++;
            at += FileEntrySize;
        }
        _items[FwCfgKey.FileDir] = dir;
    }

    /// <inheritdoc />
    public void Read(ulong offset, Span<byte> data)
    {
        lock (_gate)
        {
            if (offset == DataOffset)
            {
                ReadItem(data);
                return;
            }
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                data[i] = port >= DmaHighOffset && port < Length ? DmaSignature[(int)(port - DmaHighOffset)] : (byte)0;
            }
        }
    }

    /// <inheritdoc />
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            switch (offset)
            {
                case SelectorOffset:
                    Select(data.Length >= 2 ? BinaryPrimitives.ReadUInt16LittleEndian(data) : data[0]);
                    return;
                case DmaHighOffset when data.Length == 8:
                    Dma(BinaryPrimitives.ReadUInt64BigEndian(data));
                    return;
                case DmaHighOffset when data.Length == 4:
                    _dmaHigh = BinaryPrimitives.ReadUInt32BigEndian(data);
                    return;
                case DmaLowOffset when data.Length == 4:
                    Dma((ulong)_dmaHigh << 32 | BinaryPrimitives.ReadUInt32BigEndian(data));
                    _dmaHigh = 0;
                    return;
            }
            // Writes to the data port are ignored (QEMU dropped them in 2.4); other widths do nothing.
        }
    }

    private void Select(ushort key)
    {
        _selected = (ushort)(key & ~WriteFlag);
        _offset = 0;
    }

    private ReadOnlySpan<byte> Remaining =>
        _items.TryGetValue(_selected, out var item) && _offset < item.Length ? item.AsSpan((int)_offset) : [];

    private void ReadItem(Span<byte> data)
    {
        var rest = Remaining;
        int n = Math.Min(rest.Length, data.Length);
        rest[..n].CopyTo(data);
        data[n..].Clear();
        _offset += (uint)n;
    }

    /// <summary>One DMA request at guest address <paramref name="descriptor"/>; the control word is written back
    /// as 0 or the error bit.</summary>
    private void Dma(ulong descriptor)
    {
        if (!_memory.TryGetSpan(descriptor, 16, out var request)) return; // nowhere to report to
        uint control = BinaryPrimitives.ReadUInt32BigEndian(request);
        uint length = BinaryPrimitives.ReadUInt32BigEndian(request[4..]);
        ulong address = BinaryPrimitives.ReadUInt64BigEndian(request[8..]);
        if ((control & DmaSelect) != 0) Select((ushort)(control >> 16));
        bool ok = (control & DmaRead) != 0 ? DmaCopyOut(address, length)
            : (control & DmaWrite) != 0 ? false
            : (control & DmaSkip) == 0 || Skip(length);
        BinaryPrimitives.WriteUInt32BigEndian(request, ok ? 0 : DmaError);
    }

    private bool Skip(uint length)
    {
        _offset += (uint)Math.Min(length, Remaining.Length);
        return true;
    }

    /// <summary>Copies the selected item from its offset to [address, address+length), zeros past its end.</summary>
    private bool DmaCopyOut(ulong address, uint length)
    {
        if (address + length < address) return false;
        while (length > 0)
        {
            int chunk = (int)Math.Min(length, DmaChunk);
            if (!_memory.TryGetSpan(address, (ulong)chunk, out var target)) return false;
            ReadItem(target);
            address += (ulong)chunk;
            length -= (uint)chunk;
        }
        return true;
    }

    private static byte[] LittleEndian32(uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return b;
    }
}
