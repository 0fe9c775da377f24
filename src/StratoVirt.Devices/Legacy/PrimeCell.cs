using System.Buffers.Binary;
using StratoVirt.Memory;

namespace StratoVirt.Devices.Legacy;

/// <summary>
/// What Arm PrimeCell peripherals (PL011, PL031) share: 32-bit registers in a 4 KiB window, an interrupt line
/// driven as a level, and the identification registers at the window's top (0xFE0-0xFFC), whose part number the
/// kernel's AMBA bus matches drivers by.
/// </summary>
/// <remarks>Threading: any vCPU thread (and the main loop, for input) may call in; <see cref="Gate"/> guards the
/// state. The interrupt line is set under it, so levels reach the controller in the order the state took them.</remarks>
public abstract class PrimeCell : IBusDevice
{
    private readonly IInterruptLine _irq;
    private readonly uint _peripheralId;
    private bool _irqLevel;

    /// <summary>A device raising <paramref name="irq"/> whose PeriphID3..0 bytes are <paramref name="peripheralId"/>.</summary>
    protected PrimeCell(IInterruptLine irq, uint peripheralId)
    {
        ArgumentNullException.ThrowIfNull(irq);
        _irq = irq;
        _peripheralId = peripheralId;
    }

    protected Lock Gate { get; } = new();

    /// <summary>Whether the device's interrupt output is asserted now. Under <see cref="Gate"/>.</summary>
    protected abstract bool InterruptAsserted { get; }

    /// <summary>Reads the 32-bit register at the 4-byte aligned <paramref name="register"/>. Under <see cref="Gate"/>.</summary>
    protected abstract uint ReadRegister(ulong register);

    /// <summary>Writes the register at the 4-byte aligned <paramref name="register"/>. Under <see cref="Gate"/>.</summary>
    protected abstract void WriteRegister(ulong register, uint value);

    /// <summary>Called after a register write, outside <see cref="Gate"/> (a PL011's output).</summary>
    protected virtual void AfterWrite(ulong register, uint value)
    {
    }

    /// <summary>Called after a register read, outside <see cref="Gate"/> (a PL011 reporting receive room).</summary>
    protected virtual void AfterRead(ulong register)
    {
    }

    /// <inheritdoc />
    public void Read(ulong offset, Span<byte> data)
    {
        uint value;
        ulong register = offset & ~3UL;
        lock (Gate)
        {
            value = TryReadId(register, _peripheralId, out uint id) ? id : ReadRegister(register);
            UpdateIrq();
        }
        Fill(value, offset, data);
        AfterRead(register);
    }

    /// <inheritdoc />
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if ((offset & 3) != 0 || data.IsEmpty) return; // registers take aligned accesses only
        uint value = Value(data);
        lock (Gate)
        {
            WriteRegister(offset, value);
            UpdateIrq();
        }
        AfterWrite(offset, value);
    }

    /// <summary>Drives the line to <see cref="InterruptAsserted"/> when that changed. Under <see cref="Gate"/>.</summary>
    protected void UpdateIrq()
    {
        bool level = InterruptAsserted;
        if (level == _irqLevel) return;
        _irqLevel = level;
        _irq.SetLevel(level);
    }

    private const ulong PeriphIdStart = 0xFE0, CellIdStart = 0xFF0, IdEnd = 0x1000;
    private const uint CellId = 0xB105_F00D; // PrimeCell ID 0-3: 0x0D, 0xF0, 0x05, 0xB1

    /// <summary>The ID register at <paramref name="register"/> for a peripheral whose PeriphID3..0 bytes are
    /// <paramref name="peripheralId"/>; false below the ID block.</summary>
    private static bool TryReadId(ulong register, uint peripheralId, out uint value)
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
    private static void Fill(uint value, ulong offset, Span<byte> data)
    {
        data.Clear();
        int shift = (int)(offset & 3);
        for (int i = 0; i < data.Length && shift + i < 4; i++) data[i] = (byte)(value >> (8 * (shift + i)));
    }

    /// <summary>The value of an aligned write of 1 to 8 bytes, as far as a 32-bit register takes it.</summary>
    private static uint Value(ReadOnlySpan<byte> data) => data.Length switch
    {
        1 => data[0],
        2 or 3 => BinaryPrimitives.ReadUInt16LittleEndian(data),
        _ => BinaryPrimitives.ReadUInt32LittleEndian(data),
    };
}
