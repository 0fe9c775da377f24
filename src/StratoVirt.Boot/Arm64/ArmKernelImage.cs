using System.Buffers.Binary;

namespace StratoVirt.Boot.Arm64;

/// <summary>
/// An arm64 Linux <c>Image</c> (Documentation/arch/arm64/booting.rst), recognised by its 64-byte header: the
/// offset from a 2 MiB-aligned base it must be placed at, the memory it occupies from there, and its flags.
/// </summary>
public sealed class ArmKernelImage
{
    /// <summary>Bytes of the header: code0, code1, text_offset, image_size, flags, three reserved, magic, res5.</summary>
    public const int HeaderSize = 64;

    /// <summary>Enough of the file to recognise an x86 bzImage passed by mistake (its "HdrS" is at 0x202).</summary>
    private const int ProbeSize = 0x400;
    private const int TextOffsetAt = 8, ImageSizeAt = 16, FlagsAt = 24, MagicAt = 0x38;
    private const uint Magic = 0x644D_5241; // "ARM\x64", little-endian
    private const ulong FlagBigEndian = 1;

    public required string Path { get; init; }
    /// <summary>How far past a 2 MiB-aligned base the Image must start (0 for kernels since 5.10).</summary>
    public required ulong TextOffset { get; init; }
    /// <summary>Memory the kernel occupies from its start, bss included; at least the file's length.</summary>
    public required ulong ImageSize { get; init; }
    public required ulong Flags { get; init; }
    public required long FileLength { get; init; }

    /// <summary>Recognises and validates the Image at <paramref name="path"/>; errors name the file and the problem.</summary>
    public static ArmKernelImage Open(string path)
    {
        using var file = KernelImage.OpenHostFile(path, "kernel");
        var header = new byte[(int)Math.Min(file.Length, ProbeSize)];
        BootLoader.ReadExactly(file, header, 0, path);
        return Parse(path, header, file.Length);
    }

    internal static ArmKernelImage Parse(string path, ReadOnlySpan<byte> header, long length)
    {
        if (length == 0) throw new BootException($"kernel {path} is empty");
        RejectOtherFormats(path, header);
        if (header.Length < HeaderSize)
            throw new BootException($"kernel {path} is only {length} bytes: too short for an arm64 Image header ({HeaderSize} bytes)");
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[MagicAt..]) != Magic)
            throw new BootException($"kernel {path} has no arm64 Image magic (\"ARM\\x64\" at 0x38): not an arm64 Image");
        ulong textOffset = BinaryPrimitives.ReadUInt64LittleEndian(header[TextOffsetAt..]);
        ulong imageSize = BinaryPrimitives.ReadUInt64LittleEndian(header[ImageSizeAt..]);
        ulong flags = BinaryPrimitives.ReadUInt64LittleEndian(header[FlagsAt..]);
        if (imageSize == 0)
            throw new BootException($"kernel {path} has image_size 0: an arm64 Image from before Linux 3.17, which is not supported");
        if ((flags & FlagBigEndian) != 0)
            throw new BootException($"kernel {path} is a big-endian arm64 Image; a little-endian kernel is needed");
        if (textOffset >= ArmLayout.DeviceTreeMaxSize || (textOffset & 0xFFF) != 0)
            throw new BootException($"kernel {path} has text_offset 0x{textOffset:x}; a page-aligned offset below 2 MiB is needed");
        if ((ulong)length > imageSize || length > int.MaxValue)
            throw new BootException($"kernel {path} is {length} bytes but its header says the image takes {imageSize}: a corrupt header");
        return new ArmKernelImage { Path = path, TextOffset = textOffset, ImageSize = imageSize, Flags = flags, FileLength = length };
    }

    /// <summary>Names the formats people pass by mistake: an x86 kernel, a compressed one, an ELF vmlinux.</summary>
    private static void RejectOtherFormats(string path, ReadOnlySpan<byte> header)
    {
        if (header.Length >= 2 && header[0] == 0x1F && header[1] == 0x8B)
            throw new BootException($"kernel {path} is gzip-compressed; boot the uncompressed arm64 Image (zcat it first)");
        if (header.Length >= 4 && header[0] == 0x7F && header[1..4].SequenceEqual("ELF"u8))
            throw new BootException($"kernel {path} is an ELF file (vmlinux); boot the arm64 Image (arch/arm64/boot/Image)");
        if (header.Length >= 8 && header[..2].SequenceEqual("MZ"u8) && header[4..8].SequenceEqual("zimg"u8))
            throw new BootException($"kernel {path} is an EFI zboot image (a compressed kernel in a PE file), not an arm64 Image");
        if (SetupHeader.HasMagic(header))
            throw new BootException($"kernel {path} is an x86 bzImage, not an arm64 Image");
    }

    /// <summary>Where the Image goes: <see cref="TextOffset"/> past the 2 MiB-aligned kernel base.</summary>
    public ulong LoadAddress => ArmLayout.KernelBase + TextOffset;
}
