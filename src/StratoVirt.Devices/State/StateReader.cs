using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace StratoVirt.Devices.State;

/// <summary>Reads a saved-state record in <see cref="StateWriter"/>'s layout. Every read is bounds-checked: one
/// that would run past the end throws a <see cref="StateException"/> naming the record.</summary>
public sealed class StateReader(ReadOnlyMemory<byte> record, string name)
{
    private const uint NullLength = uint.MaxValue;
    private int _position;

    /// <summary>The record's name, for messages.</summary>
    public string Name { get; } = name;

    public int Remaining => record.Length - _position;

    public byte ReadByte() => Take(1)[0];

    public bool ReadBool() => ReadByte() switch
    {
        0 => false,
        1 => true,
        var b => throw new StateException($"{Name} state: {b} at offset {_position - 1} is not a boolean"),
    };

    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public long ReadInt64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

    public byte[] ReadBytes() => Take(Length()).ToArray();

    /// <summary>A struct written by <see cref="StateWriter.WriteStruct"/>; a byte string of another size is refused.</summary>
    public T ReadStruct<T>(string what) where T : unmanaged
    {
        int length = Length();
        if (length != Unsafe.SizeOf<T>())
            throw new StateException($"{Name} state: {what} is {length} bytes, this build's is {Unsafe.SizeOf<T>()}");
        return MemoryMarshal.Read<T>(Take(length));
    }

    public string? ReadString()
    {
        uint length = ReadUInt32();
        if (length == NullLength) return null;
        return Encoding.UTF8.GetString(Take(Checked(length)));
    }

    /// <summary>A string that goes into messages: one holding control characters (a line break would split a
    /// one-line error) is refused, <paramref name="what"/> naming it.</summary>
    public string? ReadText(string what)
    {
        string? text = ReadString();
        if (text is not null)
            foreach (char c in text)
                if (char.IsControl(c)) throw new StateException($"{Name} state: {what} holds control characters");
        return text;
    }

    /// <summary>Throws unless the whole record was read.</summary>
    public void ExpectEnd()
    {
        if (Remaining != 0) throw new StateException($"{Name} state: {Remaining} bytes are left over after the record");
    }

    private int Length() => Checked(ReadUInt32());

    private int Checked(uint length) =>
        length <= (uint)Remaining ? (int)length : throw Truncated(length);

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > Remaining) throw Truncated((uint)count);
        var span = record.Span.Slice(_position, count);
        _position += count;
        return span;
    }

    private StateException Truncated(uint wanted) =>
        new($"{Name} state is truncated: {wanted} bytes wanted at offset {_position}, {Remaining} left");
}
