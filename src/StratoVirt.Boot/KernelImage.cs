using System.Buffers.Binary;
using StratoVirt.Sys;

namespace StratoVirt.Boot;

/// <summary>Which of the supported x86_64 kernel formats a file is.</summary>
public enum KernelFormat { BzImage, VmlinuxBin, Elf }

/// <summary>One piece of the kernel file to copy into guest memory.</summary>
public readonly record struct KernelSegment(ulong GuestAddress, long FileOffset, ulong FileSize, ulong MemorySize);

/// <summary>
/// A kernel file, recognised and validated: bzImage (boot protocol 2.12+ with a 64-bit entry), ELF64 x86-64
/// vmlinux (entered at e_entry in 64-bit mode), or a raw vmlinux.bin (objcopy -O binary).
/// </summary>
public sealed class KernelImage
{
    private const int ProbeSize = 0x4000;

    public required string Path { get; init; }
    public required KernelFormat Format { get; init; }
    public required IReadOnlyList<KernelSegment> Segments { get; init; }
    public required ulong Entry { get; init; }
    /// <summary>The setup header bytes from 0x1F1 for a bzImage; empty for other formats.</summary>
    public byte[] Header { get; init; } = [];
    public ulong InitrdAddrMax { get; init; } = Layout.DefaultInitrdAddrMax;
    public int MaxCommandLine { get; init; } = 2048;
    /// <summary>Guest memory the kernel occupies from its load address while booting (image plus bss/decompression).</summary>
    public ulong End { get; init; }
    /// <summary>Entry point from an ELF PVH note (XEN_ELFNOTE_PHYS32_ENTRY), when present.</summary>
    public ulong? PvhEntry { get; init; }

    /// <summary>Recognises and validates the kernel at <paramref name="path"/>; errors name the file and the problem.</summary>
    public static KernelImage Open(string path)
    {
        using var file = OpenHostFile(path, "kernel");
        var probe = new byte[(int)Math.Min(file.Length, ProbeSize)];
        try { file.ReadExactly(probe, 0); }
        catch (SysException e) { throw new BootException($"cannot read kernel {path}: {e.Message}"); }
        return Parse(path, probe, file.Length);
    }

    /// <summary>Opens a kernel or initrd file, turning the errno (or a directory) into a sentence naming the file.</summary>
    public static HostFile OpenHostFile(string path, string what)
    {
        HostFile file;
        try
        {
            file = HostFile.OpenRead(path);
        }
        catch (SysException e)
        {
            throw new BootException(e.Errno == Libc.ENOENT
                ? $"{what} file {path} does not exist"
                : $"cannot open {what} {path}: {Libc.ErrorText(e.Errno)}");
        }
        if (!file.IsDirectory) return file;
        file.Dispose();
        throw new BootException($"{what} {path} is a directory");
    }

    internal static KernelImage Parse(string path, ReadOnlySpan<byte> probe, long length)
    {
        if (length == 0) throw new BootException($"kernel {path} is empty");
        if (probe.Length >= 4 && probe[0] == 0x7F && probe[1] == (byte)'E' && probe[2] == (byte)'L' && probe[3] == (byte)'F')
            return ParseElf(path, probe, length);
        if (SetupHeader.HasMagic(probe)) return ParseBzImage(path, probe, length);
        RejectNonKernel(path, probe);
        return new KernelImage
        {
            Path = path,
            Format = KernelFormat.VmlinuxBin,
            Segments = [new KernelSegment(Layout.VmlinuxLoad, 0, (ulong)length, (ulong)length)],
            Entry = Layout.VmlinuxLoad,
            End = Layout.VmlinuxLoad + (ulong)length,
        };
    }

    /// <summary>A raw vmlinux.bin has no magic; refuse the files people pass by mistake.</summary>
    private static void RejectNonKernel(string path, ReadOnlySpan<byte> probe)
    {
        if (probe.Length >= 2 && probe[0] == 0x1F && probe[1] == 0x8B)
            throw new BootException($"kernel {path} is a gzip file, not a kernel image (an initrd passed as -kernel?)");
        if (probe.Length >= 6 && probe[..6].SequenceEqual("070701"u8))
            throw new BootException($"kernel {path} is a cpio archive, not a kernel image");
        if (probe.Length >= 2 && probe[0] == (byte)'#' && probe[1] == (byte)'!')
            throw new BootException($"kernel {path} is a script, not a kernel image");
        if (probe.Length >= 512 && BinaryPrimitives.ReadUInt16LittleEndian(probe[0x1FE..]) == 0xAA55)
            throw new BootException($"kernel {path} has a boot sector but no Linux setup header (\"HdrS\"): not a bzImage");
        int text = 0;
        foreach (byte b in probe) if (b is (>= 0x20 and < 0x7F) or (byte)'\n' or (byte)'\r' or (byte)'\t') text++;
        if (text == probe.Length)
            throw new BootException($"kernel {path} is a text file, not a kernel image");
        if (probe.Length < 16)
            throw new BootException($"kernel {path} is only {probe.Length} bytes: not a kernel image");
    }

    private static KernelImage ParseBzImage(string path, ReadOnlySpan<byte> probe, long length)
    {
        if (probe.Length < SetupHeader.CmdLineSize + 4)
            throw new BootException($"kernel {path} is truncated: the setup header is incomplete");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(probe[SetupHeader.Version..]);
        if (version < 0x020C)
            throw new BootException(
                $"kernel {path} uses boot protocol {version >> 8}.{version & 0xFF:D2}; 2.12 or later is needed for a 64-bit entry");
        ushort xflags = BinaryPrimitives.ReadUInt16LittleEndian(probe[SetupHeader.XLoadFlags..]);
        if ((xflags & SetupHeader.XlfKernel64) == 0)
            throw new BootException($"kernel {path} has no 64-bit entry point (XLF_KERNEL_64 is clear): a 32-bit kernel?");
        if ((probe[SetupHeader.LoadFlags] & SetupHeader.LoadedHigh) == 0)
            throw new BootException($"kernel {path} is a zImage (not loaded high); only bzImage is supported");

        int setupSects = probe[SetupHeader.SetupSects] == 0 ? 4 : probe[SetupHeader.SetupSects];
        long setupBytes = (setupSects + 1) * 512L;
        long sysBytes = BinaryPrimitives.ReadUInt32LittleEndian(probe[SetupHeader.SysSize..]) * 16L;
        // syssize counts 16-byte paragraphs rounded up, so a complete file may end up to 15 bytes short of it.
        if (sysBytes == 0 || length + 15 < setupBytes + sysBytes)
            throw new BootException(
                $"kernel {path} is truncated: its header describes {setupBytes + sysBytes} bytes but the file has {length}");

        int headerEnd = Math.Min(SetupHeader.Jump + 2 + probe[SetupHeader.Jump + 1], SetupHeader.MaxEnd);
        headerEnd = Math.Min(headerEnd, probe.Length);
        uint initSize = version >= 0x020A ? BinaryPrimitives.ReadUInt32LittleEndian(probe[SetupHeader.InitSize..]) : 0;
        ulong prefAddress = version >= 0x020A ? BinaryPrimitives.ReadUInt64LittleEndian(probe[SetupHeader.PrefAddress..]) : Layout.VmlinuxLoad;
        ulong pmSize = (ulong)(length - setupBytes);
        // The decompressor runs from the load address and unpacks at pref_address, needing init_size there.
        ulong end = Math.Max(Layout.BzImageLoad + pmSize, Math.Max(prefAddress, Layout.BzImageLoad) + initSize);
        ulong initrdMax = BinaryPrimitives.ReadUInt32LittleEndian(probe[SetupHeader.InitrdAddrMax..]);
        if ((xflags & SetupHeader.XlfCanBeLoadedAbove4G) != 0) initrdMax = ulong.MaxValue;
        return new KernelImage
        {
            Path = path,
            Format = KernelFormat.BzImage,
            Segments = [new KernelSegment(Layout.BzImageLoad, setupBytes, pmSize, pmSize)],
            Entry = Layout.BzImageLoad + 0x200, // the 64-bit entry (startup_64) sits 0x200 past code32_start
            Header = probe[SetupHeader.Start..headerEnd].ToArray(),
            InitrdAddrMax = initrdMax == 0 ? Layout.DefaultInitrdAddrMax : initrdMax,
            MaxCommandLine = version >= 0x0206 ? (int)BinaryPrimitives.ReadUInt32LittleEndian(probe[SetupHeader.CmdLineSize..]) : 255,
            End = end,
        };
    }

    private static KernelImage ParseElf(string path, ReadOnlySpan<byte> probe, long length)
    {
        if (probe.Length < 64) throw new BootException($"kernel {path} is truncated: ELF header incomplete");
        if (probe[4] != 2) throw new BootException($"kernel {path} is a 32-bit ELF; a 64-bit x86 vmlinux is needed");
        if (probe[5] != 1) throw new BootException($"kernel {path} is a big-endian ELF");
        ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(probe[18..]);
        if (machine != 62) throw new BootException($"kernel {path} is an ELF for machine {machine}, not x86-64");
        ulong entry = BinaryPrimitives.ReadUInt64LittleEndian(probe[24..]);
        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(probe[32..]);
        ushort phentsize = BinaryPrimitives.ReadUInt16LittleEndian(probe[54..]);
        ushort phnum = BinaryPrimitives.ReadUInt16LittleEndian(probe[56..]);
        if (phentsize < 56 || phnum == 0 || phoff + (ulong)phentsize * phnum > (ulong)probe.Length)
            throw new BootException($"kernel {path} has a malformed ELF program header table");

        var segments = new List<KernelSegment>();
        ulong? pvhEntry = null;
        ulong end = 0;
        for (int i = 0; i < phnum; i++)
        {
            var ph = probe.Slice((int)phoff + i * phentsize, 56);
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(ph);
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]);
            ulong paddr = BinaryPrimitives.ReadUInt64LittleEndian(ph[24..]);
            ulong filesz = BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]);
            ulong memsz = BinaryPrimitives.ReadUInt64LittleEndian(ph[40..]);
            if (type == 1) // PT_LOAD
            {
                if (filesz > memsz || offset + filesz > (ulong)length || offset + filesz < offset || paddr + memsz < paddr)
                    throw new BootException($"kernel {path}: ELF segment {i} lies outside the file");
                segments.Add(new KernelSegment(paddr, (long)offset, filesz, memsz));
                end = Math.Max(end, paddr + memsz);
            }
            else if (type == 4 && offset + filesz <= (ulong)probe.Length) // PT_NOTE within the probe
            {
                pvhEntry ??= FindPvhNote(probe.Slice((int)offset, (int)filesz));
            }
        }
        if (segments.Count == 0) throw new BootException($"kernel {path} has no loadable ELF segments");
        return new KernelImage
        {
            Path = path, Format = KernelFormat.Elf, Segments = segments, Entry = entry, End = end, PvhEntry = pvhEntry,
        };
    }

    private static ulong? FindPvhNote(ReadOnlySpan<byte> notes)
    {
        while (notes.Length >= 12)
        {
            int nameSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(notes);
            int descSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(notes[4..]);
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(notes[8..]);
            int nameAligned = (nameSize + 3) & ~3, descAligned = (descSize + 3) & ~3;
            if (nameSize < 0 || descSize < 0 || 12 + nameAligned + descAligned > notes.Length) return null;
            var name = notes.Slice(12, nameSize);
            if (type == 18 && name.StartsWith("Xen"u8) && descSize >= 4) // XEN_ELFNOTE_PHYS32_ENTRY
                return descSize >= 8
                    ? BinaryPrimitives.ReadUInt64LittleEndian(notes[(12 + nameAligned)..])
                    : BinaryPrimitives.ReadUInt32LittleEndian(notes[(12 + nameAligned)..]);
            notes = notes[(12 + nameAligned + descAligned)..];
        }
        return null;
    }

    /// <summary>Opens the file for copying segments into guest memory.</summary>
    public HostFile OpenForLoad() => OpenHostFile(Path, "kernel");
}
