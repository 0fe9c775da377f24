using System.Buffers.Binary;

namespace StratoVirt.Devices.Legacy;

/// <summary>
/// What Arm PrimeCell peripherals (PL011, PL031) share: 32-bit registers in a 4 KiB window and the identification
/// registers at its top (0xFE0-0xFFC), whose part number the kernel's AMBA bus matches drivers by.
/// </summary>
internal static class PrimeCell
{
    private const ulong PeriphIdStart = 0xFE0, CellIdStart = 0xFF0, IdEnd = 0x1000;
    private const uint CellId = 0xB105_F00D; // PrimeCell ID 0-3: 0x0D, 0xF0, 0x05, 0xB1

    /// <summary>The ID register at <paramref name="register"/> for a peripheral whose PeriphID3..0 bytes are
    /// <paramref name="peripheralId"/>; false below the ID block.</summary>
    public static bool TryReadId(ulong register, uint peripheralId, out uint value)
    {
        value = register switch
        {
            >= PeriphIdStart and < CellIdStart => (peripheralId >> (int)(8 * ((register - PeriphIdStart) / 4))) & 0xFF,
            >= CellIdStart and < IdEnd => (CellId >> (int)(8 * ((register - CellIdStart) / 4))) & 0xFF,
            _ => 0,
        };
        return register >= PeriphIdStart && register < IdEnd;
    }

    /// <summary>The bytes of a 32-bit register a read of <paramref name="data"/>.Length bytes at
    /// <paramref name="offset"/> sees (narrow reads take the addressed bytes; bytes past the register read 0).</summary>
    public static void Fill(uint value, ulong offset, Span<byte> data)
    {
        data.Clear();
        int shift = (int)(offset & 3);
        for (int i = 0; i < data.Length && shift + i < 4; i++) data[i] = (byte)(value >> (8 * (shift + i)));
    }

    /// <summary>The value of an aligned write of 1 to 8 bytes, as far as a 32-bit register takes it.</summary>
    public static uint Value(ReadOnlySpan<byte> data) => data.Length switch
    {
        1 => data[0],
        2 or 3 => BinaryPrimitives.ReadUInt16LittleEndian(data),
        _ => BinaryPrimitives.ReadUInt32LittleEndian(data),
    };
}
