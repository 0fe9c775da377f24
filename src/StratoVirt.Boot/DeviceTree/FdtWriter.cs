using System.Buffers.Binary;
using System.Text;

namespace StratoVirt.Boot.DeviceTree;

/// <summary>
/// Builds a flattened device tree blob (DTSpec v0.4 chapter 5, version 17): nodes opened and closed in order,
/// their properties before their children, property names stored once in the strings block. Everything is
/// written straight into two growing buffers; <see cref="Finish"/> makes the blob.
/// </summary>
/// <remarks>Misuse (a property outside a node or after a child node, an unbalanced tree, a name with a NUL or a
/// slash) is a defect in the caller and throws <see cref="InvalidOperationException"/> or
/// <see cref="ArgumentException"/>.</remarks>
public sealed class FdtWriter
{
    private const uint Magic = 0xD00D_FEED;
    private const uint Version = 17, LastCompatibleVersion = 16;
    private const uint TokenBeginNode = 1, TokenEndNode = 2, TokenProperty = 3, TokenEnd = 9;
    private const int HeaderSize = 40;
    private const int ReservationMapSize = 16; // no reservations: only the terminating (0, 0) entry

    private byte[] _structure = new byte[1024];
    private int _structureLength;
    private byte[] _strings = new byte[256];
    private int _stringsLength;
    private readonly Dictionary<string, int> _stringOffsets = new(StringComparer.Ordinal);
    private readonly Stack<bool> _openNodes = new(); // per open node: has it a child node yet?
    private bool _rootWritten;
    private uint _nextPhandle = 1;

    /// <summary>A new phandle (1, 2, ...) for a node to carry in its <c>phandle</c> property.</summary>
    public uint AllocatePhandle() => _nextPhandle++;

    /// <summary>Opens a node: the root (name "") first, then children named <c>name[@unit-address]</c>.</summary>
    public void BeginNode(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_openNodes.Count == 0)
        {
            if (_rootWritten || name.Length != 0) throw new InvalidOperationException("a device tree has one root node, named \"\"");
            _rootWritten = true;
        }
        else
        {
            if (name.Length == 0 || name.Contains('/')) throw new ArgumentException($"bad node name '{name}'", nameof(name));
            _openNodes.Pop();
            _openNodes.Push(true);
        }
        Token(TokenBeginNode);
        Text(ref _structure, ref _structureLength, name);
        Pad();
        _openNodes.Push(false);
    }

    /// <summary>Closes the innermost open node.</summary>
    public void EndNode()
    {
        if (_openNodes.Count == 0) throw new InvalidOperationException("EndNode without an open node");
        _openNodes.Pop();
        Token(TokenEndNode);
    }

    /// <summary>A property without a value (e.g. <c>interrupt-controller</c>).</summary>
    public void PropertyEmpty(string name) => PropertyHeader(name, 0);

    public void PropertyU32(string name, uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(PropertyHeader(name, 4), value);
        Pad();
    }

    public void PropertyU64(string name, ulong value)
    {
        BinaryPrimitives.WriteUInt64BigEndian(PropertyHeader(name, 8), value);
        Pad();
    }

    /// <summary>A list of 32-bit cells (reg, interrupts, clocks, ...).</summary>
    public void PropertyCells(string name, params ReadOnlySpan<uint> cells)
    {
        var value = PropertyHeader(name, 4 * cells.Length);
        for (int i = 0; i < cells.Length; i++) BinaryPrimitives.WriteUInt32BigEndian(value[(4 * i)..], cells[i]);
        Pad();
    }

    public void PropertyString(string name, string value) => PropertyStringList(name, value);

    /// <summary>NUL-terminated strings one after the other (e.g. <c>compatible</c>).</summary>
    public void PropertyStringList(string name, params ReadOnlySpan<string> values)
    {
        int length = 0;
        foreach (string v in values)
        {
            if (v.Contains('\0')) throw new ArgumentException($"property {name}: a string contains NUL", nameof(values));
            length += Encoding.UTF8.GetByteCount(v) + 1;
        }
        var value = PropertyHeader(name, length);
        foreach (string v in values)
        {
            int n = Encoding.UTF8.GetBytes(v, value);
            value[n] = 0;
            value = value[(n + 1)..];
        }
        Pad();
    }

    public void PropertyBytes(string name, ReadOnlySpan<byte> value)
    {
        value.CopyTo(PropertyHeader(name, value.Length));
        Pad();
    }

    /// <summary>The blob, once every node is closed. <paramref name="bootCpu"/> is the boot CPU's <c>reg</c>.</summary>
    public byte[] Finish(uint bootCpu = 0)
    {
        if (!_rootWritten || _openNodes.Count != 0) throw new InvalidOperationException("the device tree has unclosed nodes");
        int structureAt = HeaderSize + ReservationMapSize;
        int structureSize = _structureLength + 4; // FDT_END follows the nodes
        int stringsAt = structureAt + structureSize;
        var blob = new byte[stringsAt + _stringsLength];
        Span<byte> h = blob;
        BinaryPrimitives.WriteUInt32BigEndian(h, Magic);
        BinaryPrimitives.WriteUInt32BigEndian(h[4..], (uint)blob.Length);
        BinaryPrimitives.WriteUInt32BigEndian(h[8..], (uint)structureAt);
        BinaryPrimitives.WriteUInt32BigEndian(h[12..], (uint)stringsAt);
        BinaryPrimitives.WriteUInt32BigEndian(h[16..], HeaderSize); // the reservation map, 8-byte aligned
        BinaryPrimitives.WriteUInt32BigEndian(h[20..], Version);
        BinaryPrimitives.WriteUInt32BigEndian(h[24..], LastCompatibleVersion);
        BinaryPrimitives.WriteUInt32BigEndian(h[28..], bootCpu);
        BinaryPrimitives.WriteUInt32BigEndian(h[32..], (uint)_stringsLength);
        BinaryPrimitives.WriteUInt32BigEndian(h[36..], (uint)structureSize);
        _structure.AsSpan(0, _structureLength).CopyTo(h[structureAt..]);
        BinaryPrimitives.WriteUInt32BigEndian(h[(structureAt + _structureLength)..], TokenEnd);
        _strings.AsSpan(0, _stringsLength).CopyTo(h[stringsAt..]);
        return blob;
    }

    /// <summary>Writes FDT_PROP, the length and the name's offset; returns the value's space (padding follows).</summary>
    private Span<byte> PropertyHeader(string name, int length)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_openNodes.Count == 0) throw new InvalidOperationException($"property {name} outside a node");
        if (_openNodes.Peek()) throw new InvalidOperationException($"property {name} after a child node");
        if (name.Length == 0 || name.Contains('\0')) throw new ArgumentException($"bad property name '{name}'", nameof(name));
        Token(TokenProperty);
        Token((uint)length);
        Token((uint)NameOffset(name));
        Reserve(ref _structure, _structureLength + length);
        var value = _structure.AsSpan(_structureLength, length);
        _structureLength += length;
        return value;
    }

    private int NameOffset(string name)
    {
        if (_stringOffsets.TryGetValue(name, out int offset)) return offset;
        offset = _stringsLength;
        Text(ref _strings, ref _stringsLength, name);
        _stringOffsets.Add(name, offset);
        return offset;
    }

    private void Token(uint value)
    {
        Reserve(ref _structure, _structureLength + 4);
        BinaryPrimitives.WriteUInt32BigEndian(_structure.AsSpan(_structureLength), value);
        _structureLength += 4;
    }

    /// <summary>Zero-fills the structure block to the next 4-byte boundary.</summary>
    private void Pad()
    {
        int padded = (_structureLength + 3) & ~3;
        Reserve(ref _structure, padded);
        _structure.AsSpan(_structureLength, padded - _structureLength).Clear();
        _structureLength = padded;
    }

    /// <summary>Appends <paramref name="text"/> as UTF-8 with its NUL.</summary>
    private static void Text(ref byte[] buffer, ref int length, string text)
    {
        int n = Encoding.UTF8.GetByteCount(text);
        Reserve(ref buffer, length + n + 1);
        Encoding.UTF8.GetBytes(text, buffer.AsSpan(length));
        buffer[length + n] = 0;
        length += n + 1;
    }

    private static void Reserve(ref byte[] buffer, int needed)
    {
        if (needed > buffer.Length) Array.Resize(ref buffer, Math.Max(needed, buffer.Length * 2));
    }
}
