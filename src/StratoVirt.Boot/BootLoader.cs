using System.Buffers.Binary;
using System.Text;
using StratoVirt.Memory;
using StratoVirt.Sys;

namespace StratoVirt.Boot;

/// <summary>Where the vCPU starts once the kernel is in memory.</summary>
public readonly record struct BootEntry(ulong Entry, ulong ZeroPage, ulong Stack);

/// <summary>What to boot: kernel, optional initrd, command line, and firmware tables to describe the machine;
/// <paramref name="Reserved"/> are address ranges the e820 map marks reserved (a q35's ECAM).</summary>
public sealed record BootSpec(KernelImage Kernel, string? InitrdPath, string CommandLine, ulong? AcpiRsdp = null,
    IReadOnlyList<(ulong Address, ulong Size)>? Reserved = null);

/// <summary>Direct Linux boot: copies the kernel and initrd into guest memory and builds the zero page.</summary>
public static class BootLoader
{
    public static BootEntry Load(GuestMemory memory, BootSpec spec)
    {
        var kernel = spec.Kernel;
        ulong lowEnd = memory.Regions[0].End;
        if (kernel.End > lowEnd)
            throw new BootException(
                $"kernel {kernel.Path} needs guest memory up to 0x{kernel.End:x} ({kernel.End >> 20} MiB) but -m gives {lowEnd >> 20} MiB below the PCI hole");

        using (var file = kernel.OpenForLoad())
        {
            foreach (var segment in kernel.Segments)
            {
                if (!memory.Contains(segment.GuestAddress, segment.MemorySize))
                    throw new BootException($"kernel {kernel.Path} loads at 0x{segment.GuestAddress:x}, outside guest memory");
                ReadExactly(file, memory.GetSpan(segment.GuestAddress, segment.FileSize), segment.FileOffset, kernel.Path);
                memory.GetSpan(segment.GuestAddress + segment.FileSize, segment.MemorySize - segment.FileSize).Clear();
            }
        }

        var zeroPage = memory.GetSpan(Layout.ZeroPage, ZeroPage.Size);
        zeroPage.Clear();
        WriteSetupHeader(zeroPage, kernel);
        WriteCommandLine(memory, zeroPage, kernel, spec.CommandLine);
        if (spec.InitrdPath is not null) LoadInitrd(memory, zeroPage, kernel, spec.InitrdPath);
        if (spec.AcpiRsdp is ulong rsdp) BinaryPrimitives.WriteUInt64LittleEndian(zeroPage[ZeroPage.AcpiRsdpAddr..], rsdp);

        var e820 = E820Map.ForRam(memory.Layout);
        foreach (var (address, size) in spec.Reserved ?? []) e820.Add(address, size, E820Map.Reserved);
        zeroPage[ZeroPage.E820Entries] = (byte)e820.Entries.Count;
        e820.WriteTo(zeroPage[ZeroPage.E820Table..]);

        LongModeTables.Write(memory);
        return new BootEntry(kernel.Entry, Layout.ZeroPage, Layout.BootStack);
    }

    private static void WriteSetupHeader(Span<byte> zeroPage, KernelImage kernel)
    {
        if (kernel.Header.Length > 0)
        {
            kernel.Header.CopyTo(zeroPage[SetupHeader.Start..]);
        }
        else
        {
            // Formats without a setup header get the minimum a 64-bit Linux entry reads.
            BinaryPrimitives.WriteUInt16LittleEndian(zeroPage[SetupHeader.BootFlag..], 0xAA55);
            BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[SetupHeader.Magic..], SetupHeader.HdrS);
            BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[SetupHeader.KernelAlignment..], 0x1000000);
        }
        zeroPage[SetupHeader.TypeOfLoader] = 0xFF; // "undefined" boot loader
        zeroPage[SetupHeader.LoadFlags] |= SetupHeader.CanUseHeap;
        BinaryPrimitives.WriteUInt16LittleEndian(zeroPage[SetupHeader.HeapEndPtr..], 0xFE00);
    }

    private static void WriteCommandLine(GuestMemory memory, Span<byte> zeroPage, KernelImage kernel, string commandLine)
    {
        int max = (int)Math.Min((ulong)kernel.MaxCommandLine, Layout.CommandLineMax - 1);
        int length = Encoding.UTF8.GetByteCount(commandLine);
        if (length > max)
            throw new BootException($"kernel command line is {length} bytes; kernel {kernel.Path} accepts at most {max}");
        var target = memory.GetSpan(Layout.CommandLine, (ulong)length + 1);
        Encoding.UTF8.GetBytes(commandLine, target);
        target[length] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[SetupHeader.CmdLinePtr..], (uint)Layout.CommandLine);
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[ZeroPage.ExtCmdLinePtr..], 0);
    }

    private static void LoadInitrd(GuestMemory memory, Span<byte> zeroPage, KernelImage kernel, string path)
    {
        using var file = KernelImage.OpenHostFile(path, "initrd");
        ulong size = (ulong)file.Length;
        if (size == 0) throw new BootException($"initrd {path} is empty");

        // Highest page-aligned spot in low RAM under the kernel's limit, above everything the kernel uses.
        ulong ceiling = Math.Min(memory.Regions[0].End, kernel.InitrdAddrMax == ulong.MaxValue ? ulong.MaxValue : kernel.InitrdAddrMax + 1);
        ulong floor = (kernel.End + 0xFFF) & ~0xFFFUL;
        if (size > int.MaxValue || size > ceiling || ((ceiling - size) & ~0xFFFUL) < floor)
            throw new BootException(
                $"initrd {path} ({size >> 20} MiB) does not fit in guest memory: {(ceiling > floor ? (ceiling - floor) >> 20 : 0)} MiB free between the kernel and 0x{ceiling:x}; raise -m");
        ulong address = (ceiling - size) & ~0xFFFUL;
        ReadExactly(file, memory.GetSpan(address, size), 0, path);
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[SetupHeader.RamdiskImage..], (uint)address);
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[SetupHeader.RamdiskSize..], (uint)size);
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[ZeroPage.ExtRamdiskImage..], (uint)(address >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(zeroPage[ZeroPage.ExtRamdiskSize..], (uint)(size >> 32));
    }

    public static void ReadExactly(HostFile file, Span<byte> target, long offset, string path)
    {
        bool complete;
        try { complete = file.ReadExactly(target, offset); }
        catch (SysException e) { throw new BootException($"cannot read {path}: {e.Message}"); }
        if (!complete) throw new BootException($"{path} is truncated: it ended before byte {offset + target.Length}");
    }
}
