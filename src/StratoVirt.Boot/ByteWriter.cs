using System.Buffers.Binary;

namespace StratoVirt.Boot;

/// <summary>Sequential little-endian writer over a span, for firmware tables laid out field by field.</summary>
internal ref struct ByteWriter
{
    private readonly Span<byte> _buffer;

    public ByteWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        Position = 0;
    }

    public int Position { get; private set; }

    public void U8(byte value) => _buffer[Position++] = value;

    public void U16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[Position..], value);
        Position += 2;
    }

    public void U32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer[Position..], value);
        Position += 4;
    }

    public void U64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer[Position..], value);
        Position += 8;
    }

    /// <summary>Writes printable ASCII padded with spaces to exactly <paramref name="width"/> bytes.</summary>
    public void Ascii(string text, int width)
    {
        if (text.Length > width)
            throw new ArgumentException($"'{text}' is longer than {width} characters", nameof(text));
        for (int i = 0; i < width; i++)
        {
            char c = i < text.Length ? text[i] : ' ';
            if (c < 0x20 || c > 0x7E)
                throw new ArgumentException($"'{text}' is not printable ASCII", nameof(text));
            _buffer[Position + i] = (byte)c;
        }
        Position += width;
    }

    public void Zeros(int count)
    {
        _buffer.Slice(Position, count).Clear();
        Position += count;
    }
}

/// <summary>The 8-bit checksum used by the MP and ACPI tables: all bytes of a structure sum to zero.</summary>
internal static class ByteChecksum
{
    /// <summary>Sum of the bytes modulo 256.</summary>
    public static byte Sum(ReadOnlySpan<byte> data)
    {
        byte sum = 0;
        foreach (byte b in data) sum += b;
        return sum;
    }

    /// <summary>Stores at <paramref name="offset"/> the byte that makes <paramref name="data"/> sum to zero.</summary>
    public static void Seal(Span<byte> data, int offset)
    {
        data[offset] = 0;
        data[offset] = (byte)(0 - Sum(data));
    }
}
