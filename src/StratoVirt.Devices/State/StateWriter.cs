using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace StratoVirt.Devices.State;

/// <summary>Builds a saved-state record: little-endian integers, booleans as one byte, and byte strings and UTF-8
/// strings led by their 32-bit length (a null string is length 0xFFFFFFFF).</summary>
public sealed class StateWriter
{
    private const uint NullLength = uint.MaxValue;
    private byte[] _buffer = new byte[64];
    private int _length;

    /// <summary>The bytes written so far.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    public byte[] ToArray() => Written.ToArray();

    public void WriteByte(byte value) => Take(1)[0] = value;

    public void WriteBool(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    public void WriteUInt16(ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(Take(2), value);

    public void WriteUInt32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), value);

    public void WriteUInt64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), value);

    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64LittleEndian(Take(8), value);

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        WriteUInt32((uint)value.Length);
        value.CopyTo(Take(value.Length));
    }

    /// <summary>A plain struct (a kernel ABI struct) as a byte string of its size.</summary>
    public void WriteStruct<T>(in T value) where T : unmanaged =>
        WriteBytes(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));

    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteUInt32(NullLength);
            return;
        }
        int length = Encoding.UTF8.GetByteCount(value);
        WriteUInt32((uint)length);
        Encoding.UTF8.GetBytes(value, Take(length));
    }

    /// <summary>The next <paramref name="count"/> bytes of the record, growing it as needed.</summary>
    private Span<byte> Take(int count)
    {
        if (_buffer.Length - _length < count) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }
}
