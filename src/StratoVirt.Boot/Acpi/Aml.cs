using System.Buffers.Binary;

namespace StratoVirt.Boot.Acpi;

/// <summary>Trigger mode of an interrupt in a resource descriptor.</summary>
internal enum AmlTrigger { Level, Edge }

/// <summary>The resource type of an address space descriptor.</summary>
internal enum AmlAddressSpace : byte { Memory = 0, Io = 1, BusNumber = 2 }

/// <summary>Polarity of an interrupt in a resource descriptor.</summary>
internal enum AmlPolarity { ActiveHigh, ActiveLow }

/// <summary>
/// A small encoder for the subset of ACPI Machine Language our DSDT needs: names, scopes, devices, packages,
/// integers, strings and resource templates. Objects that hold others are opened with a Begin call and closed
/// with <see cref="End"/>, which back-fills their length prefix.
/// </summary>
internal sealed class AmlWriter
{
    private const byte ZeroOp = 0x00;
    private const byte OneOp = 0x01;
    private const byte NameOp = 0x08;
    private const byte BytePrefix = 0x0A;
    private const byte WordPrefix = 0x0B;
    private const byte DWordPrefix = 0x0C;
    private const byte StringPrefix = 0x0D;
    private const byte QWordPrefix = 0x0E;
    private const byte ScopeOp = 0x10;
    private const byte BufferOp = 0x11;
    private const byte PackageOp = 0x12;
    private const byte MethodOp = 0x14;
    private const byte ReturnOp = 0xA4;
    private const byte Arg0Op = 0x68;
    private const byte ExtOpPrefix = 0x5B;
    private const byte DeviceOp = 0x82; // after ExtOpPrefix
    private const byte RootChar = (byte)'\\';
    private const byte ParentPrefixChar = (byte)'^';
    private const byte DualNamePrefix = 0x2E;
    private const byte MultiNamePrefix = 0x2F;
    private const byte NullName = 0x00;

    // Resource descriptor tags (ACPI 6.3 section 6.4).
    private const byte IoPortTag = 0x47; // small item 0x08, 7 bytes
    private const byte EndTag = 0x79; // small item 0x0F, 1 byte
    private const byte Memory32FixedTag = 0x86;
    private const byte ExtendedInterruptTag = 0x89;
    private const byte DWordAddressTag = 0x87;
    private const byte WordAddressTag = 0x88;
    private const byte QWordAddressTag = 0x8A;

    private enum FrameKind { Plain, ResourceTemplate }

    private readonly record struct Frame(int Start, FrameKind Kind);

    private byte[] _buffer = new byte[256];
    private int _length;
    private readonly Stack<Frame> _open = new();

    /// <summary>The bytes encoded so far.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    /// <summary>The finished term list; every Begin must have been matched by <see cref="End"/>.</summary>
    public byte[] ToArray()
    {
        if (_open.Count != 0)
            throw new InvalidOperationException($"{_open.Count} AML object(s) left open");
        return Written.ToArray();
    }

    /// <summary>Starts <c>Name(name, value)</c>; the next object written is the value.</summary>
    public void Name(string name)
    {
        Byte(NameOp);
        NameString(name);
    }

    /// <summary>An integer with the shortest encoding: Zero, One, or a Byte/Word/DWord/QWord constant.</summary>
    public void Integer(ulong value)
    {
        Span<byte> encoded = stackalloc byte[9];
        int count = EncodeInteger(value, encoded);
        Reserve(count);
        encoded[..count].CopyTo(_buffer.AsSpan(_length));
        _length += count;
    }

    /// <summary>A null-terminated ASCII string constant.</summary>
    public void String(string value)
    {
        Byte(StringPrefix);
        foreach (char c in value)
        {
            if (c == 0 || c > 0x7F)
                throw new ArgumentException($"AML strings are ASCII without NUL: '{value}'", nameof(value));
            Byte((byte)c);
        }
        Byte(0);
    }

    /// <summary>A compressed EISA id such as PNP0501, as ASL's <c>EisaId()</c> emits it (a DWord).</summary>
    public void EisaId(string id)
    {
        Byte(DWordPrefix);
        Little(CompressEisaId(id), 4);
    }

    /// <summary>Opens <c>Scope(name) { ... }</c>.</summary>
    public void BeginScope(string name)
    {
        Byte(ScopeOp);
        Open(FrameKind.Plain);
        NameString(name);
    }

    /// <summary>Opens <c>Device(name) { ... }</c>.</summary>
    public void BeginDevice(string name)
    {
        Byte(ExtOpPrefix);
        Byte(DeviceOp);
        Open(FrameKind.Plain);
        NameString(name);
    }

    /// <summary>Opens <c>Method(name, argCount, NotSerialized) { ... }</c>.</summary>
    public void BeginMethod(string name, int argCount)
    {
        if (argCount is < 0 or > 7) throw new ArgumentOutOfRangeException(nameof(argCount), "a method takes 0 to 7 arguments");
        Byte(MethodOp);
        Open(FrameKind.Plain);
        NameString(name);
        Byte((byte)argCount);
    }

    /// <summary><c>Return(ArgN)</c>.</summary>
    public void ReturnArg(int index)
    {
        if (index is < 0 or > 6) throw new ArgumentOutOfRangeException(nameof(index), "arguments are Arg0 to Arg6");
        Byte(ReturnOp);
        Byte((byte)(Arg0Op + index));
    }

    /// <summary>Opens <c>Package(count) { ... }</c>; exactly <paramref name="count"/> objects must follow.</summary>
    public void BeginPackage(byte count)
    {
        Byte(PackageOp);
        Open(FrameKind.Plain);
        Byte(count);
    }

    /// <summary>Opens <c>ResourceTemplate() { ... }</c>: a Buffer of resource descriptors that End closes with an end tag.</summary>
    public void BeginResourceTemplate()
    {
        Byte(BufferOp);
        Open(FrameKind.ResourceTemplate);
    }

    /// <summary><c>Memory32Fixed(ReadWrite|ReadOnly, base, length)</c>.</summary>
    public void Memory32Fixed(bool writable, uint baseAddress, uint length)
    {
        RequireResourceTemplate();
        Byte(Memory32FixedTag);
        Little(9, 2);
        Byte(writable ? (byte)1 : (byte)0);
        Little(baseAddress, 4);
        Little(length, 4);
    }

    /// <summary><c>IO(Decode16, min, max, alignment, length)</c>.</summary>
    public void IoPort(ushort minimum, ushort maximum, byte alignment, byte length)
    {
        RequireResourceTemplate();
        Byte(IoPortTag);
        Byte(1); // 16-bit decode
        Little(minimum, 2);
        Little(maximum, 2);
        Byte(alignment);
        Byte(length);
    }

    /// <summary><c>Interrupt(ResourceConsumer, trigger, polarity, Exclusive|Shared) { gsi }</c>.</summary>
    public void ExtendedInterrupt(uint gsi, AmlTrigger trigger, AmlPolarity polarity, bool shared)
    {
        RequireResourceTemplate();
        byte flags = 1; // consumer
        if (trigger == AmlTrigger.Edge) flags |= 1 << 1;
        if (polarity == AmlPolarity.ActiveLow) flags |= 1 << 2;
        if (shared) flags |= 1 << 3;
        Byte(ExtendedInterruptTag);
        Little(6, 2); // flags, table length and one interrupt number
        Byte(flags);
        Byte(1);
        Little(gsi, 4);
    }

    /// <summary>A bridge's address window, as <c>WordBusNumber</c>/<c>WordIO</c> (16 bits), <c>DWordMemory</c> (32)
    /// or <c>QWordMemory</c> (64): ResourceProducer, MinFixed, MaxFixed, PosDecode; memory read-write and
    /// cacheable, I/O over the entire range. <paramref name="bytes"/> is 2, 4 or 8.</summary>
    public void AddressSpace(AmlAddressSpace space, int bytes, ulong minimum, ulong length)
    {
        RequireResourceTemplate();
        byte tag = bytes switch { 2 => WordAddressTag, 4 => DWordAddressTag, 8 => QWordAddressTag,
            _ => throw new ArgumentOutOfRangeException(nameof(bytes)) };
        Byte(tag);
        Little((ulong)(3 + 5 * bytes), 2);
        Byte((byte)space);
        Byte(0b1100); // producer, positive decode, minimum and maximum fixed
        Byte(space switch { AmlAddressSpace.Memory => 0b011, AmlAddressSpace.Io => 0b11, _ => 0 });
        Little(0, bytes); // granularity
        Little(minimum, bytes);
        Little(minimum + length - 1, bytes);
        Little(0, bytes); // translation
        Little(length, bytes);
    }

    /// <summary>Closes the innermost open object, inserting its PkgLength (and a resource template's size).</summary>
    public void End()
    {
        if (!_open.TryPop(out var frame))
            throw new InvalidOperationException("no AML object is open");

        Span<byte> prefix = stackalloc byte[4 + 9];
        int prefixLength;
        if (frame.Kind == FrameKind.ResourceTemplate)
        {
            Byte(EndTag);
            Byte(0); // checksum 0: "treat as valid"
            int bytes = _length - frame.Start;
            Span<byte> bufferSize = stackalloc byte[9];
            int sizeLength = EncodeInteger((ulong)bytes, bufferSize);
            int pkg = EncodePkgLength(sizeLength + bytes, prefix);
            bufferSize[..sizeLength].CopyTo(prefix[pkg..]);
            prefixLength = pkg + sizeLength;
        }
        else
        {
            prefixLength = EncodePkgLength(_length - frame.Start, prefix);
        }
        Insert(frame.Start, prefix[..prefixLength]);
    }

    /// <summary>Encodes an integer with the shortest prefix; returns how many bytes (1..9) were written.</summary>
    internal static int EncodeInteger(ulong value, Span<byte> destination)
    {
        if (value <= 1)
        {
            destination[0] = value == 0 ? ZeroOp : OneOp;
            return 1;
        }
        (byte prefix, int width) = value switch
        {
            <= byte.MaxValue => (BytePrefix, 1),
            <= ushort.MaxValue => (WordPrefix, 2),
            <= uint.MaxValue => (DWordPrefix, 4),
            _ => (QWordPrefix, 8),
        };
        destination[0] = prefix;
        for (int i = 0; i < width; i++)
            destination[1 + i] = (byte)(value >> (8 * i));
        return 1 + width;
    }

    /// <summary>
    /// Encodes a PkgLength for <paramref name="contentLength"/> bytes that follow it; the encoded value counts
    /// the PkgLength bytes themselves. Returns how many bytes (1..4) were written.
    /// </summary>
    internal static int EncodePkgLength(int contentLength, Span<byte> destination)
    {
        if (contentLength + 1 < 0x40)
        {
            destination[0] = (byte)(contentLength + 1);
            return 1;
        }
        for (int count = 2; count <= 4; count++)
        {
            int total = contentLength + count;
            if (total < 1 << (4 + 8 * (count - 1)))
            {
                destination[0] = (byte)(((count - 1) << 6) | (total & 0x0F));
                for (int i = 1; i < count; i++)
                    destination[i] = (byte)(total >> (4 + 8 * (i - 1)));
                return count;
            }
        }
        throw new InvalidOperationException($"AML object of {contentLength} bytes is too large");
    }

    /// <summary>The 32-bit value of a compressed EISA id ("PNP0501" is 0x0105D041).</summary>
    internal static uint CompressEisaId(string id)
    {
        if (id.Length != 7 || !IsUpper(id[0]) || !IsUpper(id[1]) || !IsUpper(id[2])
            || !IsHex(id[3]) || !IsHex(id[4]) || !IsHex(id[5]) || !IsHex(id[6]))
            throw new ArgumentException($"'{id}' is not an EISA id (three capitals, four hex digits)", nameof(id));

        Span<byte> bytes = stackalloc byte[4];
        int a = id[0] - '@', b = id[1] - '@', c = id[2] - '@';
        bytes[0] = (byte)((a << 2) | (b >> 3));
        bytes[1] = (byte)(((b & 7) << 5) | c);
        bytes[2] = (byte)((Hex(id[3]) << 4) | Hex(id[4]));
        bytes[3] = (byte)((Hex(id[5]) << 4) | Hex(id[6]));
        return BinaryPrimitives.ReadUInt32LittleEndian(bytes);

        static bool IsUpper(char ch) => ch is >= 'A' and <= 'Z';
        static bool IsHex(char ch) => ch is >= '0' and <= '9' or >= 'A' and <= 'F';
        static int Hex(char ch) => ch <= '9' ? ch - '0' : ch - 'A' + 10;
    }

    /// <summary>
    /// A NameString: optional <c>\</c> or <c>^</c> prefixes, then dot-separated segments of up to four characters,
    /// padded with '_' (so "_SB" and "_SB_" are the same segment).
    /// </summary>
    private void NameString(string path)
    {
        int i = 0;
        if (path.StartsWith('\\')) { Byte(RootChar); i = 1; }
        else while (i < path.Length && path[i] == '^') { Byte(ParentPrefixChar); i++; }

        string rest = path[i..];
        if (rest.Length == 0)
        {
            if (i == 0) throw new ArgumentException("empty AML name", nameof(path));
            Byte(NullName);
            return;
        }

        string[] segments = rest.Split('.');
        if (segments.Length == 2) Byte(DualNamePrefix);
        else if (segments.Length > 2)
        {
            if (segments.Length > byte.MaxValue) throw new ArgumentException("AML path too deep", nameof(path));
            Byte(MultiNamePrefix);
            Byte((byte)segments.Length);
        }
        foreach (string segment in segments) NameSegment(segment, path);
    }

    private void NameSegment(string segment, string path)
    {
        if (segment.Length is 0 or > 4)
            throw new ArgumentException($"AML name segment '{segment}' in '{path}' must be 1..4 characters", nameof(path));
        for (int i = 0; i < 4; i++)
        {
            char c = i < segment.Length ? segment[i] : '_';
            bool valid = c is >= 'A' and <= 'Z' or '_' || (i > 0 && c is >= '0' and <= '9');
            if (!valid)
                throw new ArgumentException($"AML name segment '{segment}' in '{path}' has an invalid character", nameof(path));
            Byte((byte)c);
        }
    }

    private void Open(FrameKind kind) => _open.Push(new Frame(_length, kind));

    private void RequireResourceTemplate()
    {
        if (!_open.TryPeek(out var top) || top.Kind != FrameKind.ResourceTemplate)
            throw new InvalidOperationException("resource descriptors belong inside a ResourceTemplate");
    }

    private void Byte(byte value)
    {
        Reserve(1);
        _buffer[_length++] = value;
    }

    private void Little(ulong value, int width)
    {
        Reserve(width);
        for (int i = 0; i < width; i++)
            _buffer[_length++] = (byte)(value >> (8 * i));
    }

    private void Insert(int at, ReadOnlySpan<byte> bytes)
    {
        Reserve(bytes.Length);
        _buffer.AsSpan(at, _length - at).CopyTo(_buffer.AsSpan(at + bytes.Length));
        bytes.CopyTo(_buffer.AsSpan(at));
        _length += bytes.Length;
    }

    private void Reserve(int count)
    {
        if (_length + count > _buffer.Length)
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
    }
}
