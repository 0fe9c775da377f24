using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using StratoVirt.Sys;

namespace StratoVirt.Tests.Native;

/// <summary>
/// Keeps the idle microVM's memory overhead from growing unnoticed: the idle payload VM with a QMP socket, under
/// seccomp, must stay within <see cref="IdleBudgetKb"/> of Rss outside guest RAM (bench/memory.sh's rule). The
/// benchmark keeps the exact figure and compares it with QEMU and the C floor.
/// </summary>
[Trait("Level", "Native")]
[Collection("payloads")]
public sealed partial class FootprintTests(PayloadFixture payloads)
{
    /// <summary>4.5 MiB: the issue's budget. The lab measures about 2.1 MB; natively on a PVM host the GC's first
    /// generation is larger (4.2-4.4 MB there before the start-up changes of 2026-12-07), so the budget stays.</summary>
    public const int IdleBudgetKb = 4608;

    [GeneratedRegex(@"OVERHEAD-KB (\d+)")]
    private static partial Regex Overhead();

    [GeneratedRegex(@"ZERO-FILL-KB (\d+) (\d+)")]
    private static partial Regex ZeroFill();

    [Fact]
    public void IdleMicroVmStaysWithinItsMemoryBudget()
    {
        var r = KvmRunner.Run("idle-footprint", payloads);
        Assert.False(r.TimedOut, r.ToString());
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("\"status\":\"running\"", r.Stdout.Replace(" ", ""));
        Assert.Contains("host-qmp-quit", r.Stdout);
        Assert.Matches(@"start-up done: the pages of \d+ KiB of read-only code and data mappings given back", r.Stderr);
        var m = Overhead().Match(r.Stdout);
        Assert.True(m.Success, r.ToString());
        int kb = int.Parse(m.Groups[1].Value);
        Assert.True(kb > 0 && kb <= IdleBudgetKb, $"idle overhead {kb} kB, budget {IdleBudgetKb} kB");
    }

    /// <summary>src/Native/prefault.c maps the binary's zero-filled data (.bss and the runtime's .hydrated section)
    /// in one system call before the runtime starts: all of it is resident, not only the pages written.</summary>
    [Fact]
    public void BinaryZeroFilledDataIsMappedWhole()
    {
        int expected = ZeroFilledKb(File.ReadAllBytes(VmmProcess.Binary));
        Assert.True(expected >= 256, $"{VmmProcess.Binary}'s zero-filled data is {expected} kB: not a NativeAOT build");
        var r = KvmRunner.Run("idle-footprint", payloads);
        Assert.True(r.ExitCode == 0, r.ToString());
        var m = ZeroFill().Match(r.Stdout);
        Assert.True(m.Success, r.ToString());
        int size = int.Parse(m.Groups[1].Value), rss = int.Parse(m.Groups[2].Value);
        Assert.True(size >= expected, $"the mapping after the binary's is {size} kB, not its {expected} kB of zero-filled data");
        Assert.Equal(size, rss);
    }

    /// <summary>The anonymous mapping the kernel adds for an ELF64 executable's writable PT_LOAD segment: from the
    /// page after its file contents to the page after its end in memory.</summary>
    private static int ZeroFilledKb(ReadOnlySpan<byte> elf)
    {
        const ulong Page = 4096;
        int phoff = (int)BinaryPrimitives.ReadUInt64LittleEndian(elf[0x20..]);
        int entrySize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x36..]), count = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x38..]);
        ulong kb = 0;
        for (int i = 0; i < count; i++)
        {
            var h = MemoryMarshal.Read<ElfProgramHeader>(elf[(phoff + i * entrySize)..]);
            if (h.Type != Libc.PT_LOAD) continue;
            ulong fileEnd = (h.VirtualAddress + h.FileSize + Page - 1) & ~(Page - 1);
            ulong memoryEnd = (h.VirtualAddress + h.MemorySize + Page - 1) & ~(Page - 1);
            if (memoryEnd > fileEnd) kb += (memoryEnd - fileEnd) / 1024;
        }
        return (int)kb;
    }
}
