using System.Buffers.Binary;
using StratoVirt.Memory;

namespace StratoVirt.Boot;

/// <summary>The GDT, empty IDT and identity page tables a 64-bit kernel entry needs.</summary>
public static class LongModeTables
{
    public const ushort CodeSelector = 0x08;
    public const ushort DataSelector = 0x10;
    public const ushort TssSelector = 0x18;

    /// <summary>Null, 64-bit code, data and TSS descriptors, in that order.</summary>
    public static readonly ulong[] Gdt =
    [
        0,
        Descriptor(0xA09B, 0, 0xFFFFF), // present, DPL 0, code exec/read accessed, L=1, G=1
        Descriptor(0xC093, 0, 0xFFFFF), // present, DPL 0, data read/write accessed, D/B=1, G=1
        Descriptor(0x808B, 0, 0xFFFFF), // present, busy 64-bit TSS, G=1
    ];

    /// <summary>Encodes a segment descriptor from its flags word (access byte and flag nibble), base and limit.</summary>
    public static ulong Descriptor(ushort flags, uint @base, uint limit) =>
        ((ulong)(@base & 0xFF000000) << 32) | ((ulong)(flags & 0xF0FF) << 40) | ((ulong)(limit & 0xF0000) << 32)
        | ((ulong)(@base & 0x00FFFFFF) << 16) | (limit & 0xFFFF);

    /// <summary>Writes the GDT, a zero IDT and 4 GiB of identity-mapped 2 MiB pages.</summary>
    public static void Write(GuestMemory memory)
    {
        for (int i = 0; i < Gdt.Length; i++) memory.WriteUInt64(Layout.Gdt + (ulong)i * 8, Gdt[i]);
        memory.WriteUInt64(Layout.Idt, 0);

        memory.WriteUInt64(Layout.Pml4, Layout.Pdpt | 0x3); // present | writable
        for (ulong dir = 0; dir < 4; dir++)
            memory.WriteUInt64(Layout.Pdpt + dir * 8, (Layout.PageDirectories + dir * 0x1000) | 0x3);
        // The four directories are contiguous: 2048 entries, entry i mapping the 2 MiB page at i * 2 MiB.
        var directories = memory.GetSpan(Layout.PageDirectories, 4 * 0x1000);
        for (int i = 0; i < 2048; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(directories[(i * 8)..], ((ulong)i << 21) | 0x83); // present | writable | 2 MiB
    }
}
