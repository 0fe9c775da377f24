using StratoVirt.Devices.Legacy;
using Xunit;

namespace StratoVirt.Tests.Devices;

/// <summary>What a q35 machine reset does to the PC legacy devices: the UART and the i8042 to their power-on
/// registers, the RTC only to its RESET-pin state (time and CMOS RAM are battery-backed).</summary>
[Trait("Level", "Unit")]
public sealed class LegacyResetTests
{
    [Fact]
    public void TheUartGoesBackToItsPowerOnRegistersAndDropsQueuedInput()
    {
        var uart = new Serial16550(new CountingInterruptLine(), new RecordingSerialOutput());
        uart.Out(3, 0x80); // DLAB
        uart.Out(0, 1); // divisor 1: 115200 baud
        uart.Out(3, 0x03); // 8N1
        uart.Out(1, 0x0F); // every interrupt
        uart.Out(4, 0x0B); // DTR, RTS, OUT2
        uart.Out(7, 0x5A);
        Assert.Equal(3, uart.EnqueueInput("abc"u8));
        uart.Reset();
        Assert.Equal((0, 0, 0, 0), (uart.In(1), uart.In(3), uart.In(4), uart.In(7)));
        Assert.Equal(0x60, uart.In(5)); // transmitter empty, no data ready
        uart.Out(3, 0x80);
        Assert.Equal((12, 0), (uart.In(0), uart.In(1))); // the reset divisor, 9600 baud
        Assert.Equal(Serial16550.RxFifoCapacity, uart.InputRoom);
    }

    [Fact]
    public void TheI8042ForgetsItsConfigurationAndPendingBytes()
    {
        int resets = 0;
        var kbc = new I8042(() => resets++, new CountingInterruptLine());
        kbc.Out(4, 0x60); // write the configuration byte
        kbc.Out(0, 0x00); // interrupts and translation off
        kbc.Out(4, 0xAA); // self-test: 0x55 waits in the output buffer
        kbc.Out(4, 0xD1); // a command whose data byte has not come
        kbc.Reset();
        Assert.Equal(0, kbc.In(4) & 0x01); // nothing to read
        kbc.Out(4, 0x20); // read the configuration byte: the default again
        Assert.Equal(0x45, kbc.In(0));
        kbc.Out(0, 0xFE); // a keyboard byte, not the output port's data: no reset
        Assert.Equal(0, resets);
    }

    [Fact]
    public void TheRtcKeepsTimeAndRamButClearsIndexAndInterruptEnables()
    {
        var now = new DateTime(2024, 2, 29, 13, 45, 7, DateTimeKind.Utc);
        var rtc = new CmosRtc(() => now);
        rtc.Out(0, 0x40);
        rtc.Out(1, 0xA5); // CMOS RAM
        rtc.Out(0, 0x0B);
        rtc.Out(1, 0x02 | 0x40 | 0x10); // 24-hour, PIE, UIE
        rtc.Out(0, 0x80 | 0x04); // index hours, NMI off
        rtc.Reset();
        Assert.False(rtc.NmiDisabled);
        Assert.Equal(0x07, rtc.In(1)); // the index is 0 (seconds) again
        rtc.Out(0, 0x0B);
        Assert.Equal(0x02, rtc.In(1));
        rtc.Out(0, 0x40);
        Assert.Equal(0xA5, rtc.In(1));
        rtc.Out(0, 0x04);
        Assert.Equal(0x13, rtc.In(1));
    }
}
