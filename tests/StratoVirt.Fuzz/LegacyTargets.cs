using System.Buffers.Binary;
using StratoVirt.Devices.Legacy;
using StratoVirt.Memory;
using StratoVirt.Tests.Devices;

namespace StratoVirt.Fuzz;

/// <summary>
/// The legacy devices on the port I/O bus as the microVM places them (16550A at 0x3F8, i8042 at 0x60 and 0x64,
/// CMOS RTC at 0x70): port reads and writes of every width, and for the UART host input, in the input's order.
/// Each target aims its accesses at one device; the bus target also at the gaps and edges between them. Every
/// access must complete (unclaimed ports read all ones); nothing may escape.
/// </summary>
/// <remarks>Input: the RTC clock's seconds since 2000 u32; then per operation: kind u8 (bit 0 write; bits 1-2 the
/// width 1, 2, 4 or 8; bit 3 host input to the UART instead), port u8, value u16.</remarks>
public sealed class LegacyBusTarget(LegacyBusTarget.Kind kind) : IFuzzTarget
{
    public enum Kind { Uart, Rtc, I8042, IoBus }

    public const ulong SerialBase = 0x3F8;

    /// <summary>Where the bus target's accesses start: each device, and the ports just outside each.</summary>
    private static readonly ulong[] BusBases = [SerialBase, 0x3F0, 0x5E, 0x62, 0x6E, 0x70, 0x400, 0];

    public void Run(ReadOnlySpan<byte> input)
    {
        var r = new FuzzReader(input);
        var now = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(r.U32());
        var bus = new IoBus("pio");
        var serial = new Serial16550(new CountingInterruptLine(), new CountingSerialOutput());
        bus.Register(SerialBase, Serial16550.Length, serial);
        var i8042 = new I8042(() => { }, new CountingInterruptLine());
        bus.Register(0x60, 1, i8042.DataPort);
        bus.Register(0x64, 1, i8042.CommandPort);
        bus.Register(0x70, 2, new CmosRtc(() => now));

        Span<byte> data = stackalloc byte[8];
        while (r.Remaining > 0)
        {
            byte op = r.U8(), port = r.U8();
            ushort value = r.U16();
            BinaryPrimitives.WriteUInt16LittleEndian(data, value);
            BinaryPrimitives.WriteUInt16LittleEndian(data[2..], value);
            BinaryPrimitives.WriteUInt32LittleEndian(data[4..], ~(uint)value);
            if ((op & 8) != 0 && kind == Kind.Uart)
            {
                serial.EnqueueInput(data[..(port % 9)]);
                continue;
            }
            ulong address = kind switch
            {
                Kind.Uart => SerialBase + (port & 7u),
                Kind.Rtc => 0x70 + (port & 1u),
                Kind.I8042 => (port & 1) != 0 ? 0x64UL : 0x60UL,
                _ => BusBases[port >> 5] + (port & 31u),
            };
            var access = data[..(1 << ((op >> 1) & 3))];
            if ((op & 1) != 0) bus.Write(address, access);
            else bus.Read(address, access);
        }
    }
}
