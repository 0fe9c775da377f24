using System.Buffers.Binary;
using System.Text;

namespace StratoVirt.Devices.Firmware;

/// <summary>
/// The script of QEMU's ACPI linker/loader, the fw_cfg file <c>etc/table-loader</c>: 128-byte little-endian
/// commands that make the firmware allocate guest memory for fw_cfg files, patch pointers between them with the
/// addresses it chose, and recompute checksums over the patched bytes.
/// </summary>
public sealed class TableLoader
{
    public const string FileName = "etc/table-loader";
    public const int CommandSize = 128;
    public const uint Allocate = 1, AddPointer = 2, AddChecksum = 3;

    /// <summary>Where an allocation must lie: anywhere below 4 GiB, or in the BIOS's F segment (the RSDP).</summary>
    public enum Zone : byte { High = 1, FSegment = 2 }

    private readonly List<byte[]> _commands = [];

    /// <summary>Load <paramref name="file"/> into memory aligned to <paramref name="alignment"/> bytes.</summary>
    public void AddAllocate(string file, uint alignment, Zone zone)
    {
        var c = Command(Allocate);
        Name(c.AsSpan(4), file);
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(4 + FwCfg.FileNameSize), alignment);
        c[8 + FwCfg.FileNameSize] = (byte)zone;
    }

    /// <summary>Add the address of <paramref name="pointeeFile"/> to the <paramref name="size"/>-byte
    /// little-endian value at <paramref name="offset"/> of <paramref name="pointerFile"/>.</summary>
    public void AddAddPointer(string pointerFile, string pointeeFile, uint offset, byte size)
    {
        if (size is not (1 or 2 or 4 or 8)) throw new ArgumentException("a pointer is 1, 2, 4 or 8 bytes", nameof(size));
        var c = Command(AddPointer);
        Name(c.AsSpan(4), pointerFile);
        Name(c.AsSpan(4 + FwCfg.FileNameSize), pointeeFile);
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(4 + 2 * FwCfg.FileNameSize), offset);
        c[8 + 2 * FwCfg.FileNameSize] = size;
    }

    /// <summary>Set the byte at <paramref name="resultOffset"/> of <paramref name="file"/> so that
    /// [start, start+length) sums to zero.</summary>
    public void AddAddChecksum(string file, uint resultOffset, uint start, uint length)
    {
        var c = Command(AddChecksum);
        Name(c.AsSpan(4), file);
        var args = c.AsSpan(4 + FwCfg.FileNameSize);
        BinaryPrimitives.WriteUInt32LittleEndian(args, resultOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(args[4..], start);
        BinaryPrimitives.WriteUInt32LittleEndian(args[8..], length);
    }

    /// <summary>The script, as the fw_cfg file's contents.</summary>
    public byte[] ToArray()
    {
        var blob = new byte[_commands.Count * CommandSize];
        for (int i = 0; i < _commands.Count; i++) _commands[i].CopyTo(blob, i * CommandSize);
        return blob;
    }

    private byte[] Command(uint type)
    {
        var c = new byte[CommandSize];
        BinaryPrimitives.WriteUInt32LittleEndian(c, type);
        _commands.Add(c);
        return c;
    }

    private static void Name(Span<byte> field, string name)
    {
        if (Encoding.UTF8.GetByteCount(name) >= FwCfg.FileNameSize)
            throw new ArgumentException($"fw_cfg file name '{name}' is too long", nameof(name));
        Encoding.UTF8.GetBytes(name, field);
    }
}
