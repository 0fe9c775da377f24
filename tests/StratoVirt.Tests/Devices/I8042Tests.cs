using StratoVirt.Devices.Legacy;
using Xunit;

namespace StratoVirt.Tests.Devices;

[Trait("Level", "Unit")]
public sealed class I8042Tests
{
    private const ulong Data = 0, Command = 4;

    private readonly CountingInterruptLine _irq = new();
    private readonly I8042 _kbc;
    private int _resets;

    public I8042Tests() => _kbc = new I8042(() => _resets++, _irq);

    [Fact]
    public void PulseResetCommandResetsTheMachine()
    {
        _kbc.Out(Command, 0xFF); // pulses no line
        Assert.Equal(0, _resets);
        _kbc.Out(Command, 0xFE);
        Assert.Equal(1, _resets);
    }

    [Fact]
    public void OutputPortResetBitResetsTheMachine()
    {
        _kbc.Out(Command, 0xD1);
        _kbc.Out(Data, 0xDF); // A20 on, reset line high
        Assert.Equal(0, _resets);
        _kbc.Out(Command, 0xD0);
        Assert.Equal(0xDF, _kbc.In(Data));
        _kbc.Out(Command, 0xD1);
        _kbc.Out(Data, 0xDE);
        Assert.Equal(1, _resets);
    }

    [Fact]
    public void SelfTestAnswersThroughTheOutputBuffer()
    {
        byte idle = _kbc.In(Command);
        Assert.NotEqual(0xFF, idle); // 0xFF means "no controller" to Linux
        Assert.Equal(0, idle & 0x01);
        Assert.Equal(0x10, idle & 0x10); // not inhibited, so no "Keylock active" warning

        _kbc.Out(Command, 0xAA);
        Assert.Equal(0x01, _kbc.In(Command) & 0x01);
        Assert.Equal(0x08, _kbc.In(Command) & 0x08); // last write was a command
        Assert.Equal(0x55, _kbc.In(Data));
        Assert.Equal(0, _kbc.In(Command) & 0x01);

        _kbc.Out(Command, 0xAB);
        Assert.Equal(0x00, _kbc.In(Data));
        Assert.Equal(0, _kbc.In(Command) & 0x01);
    }

    [Fact]
    public void ConfigurationByteRoundTripsAndTracksEnableCommands()
    {
        _kbc.Out(Command, 0x20);
        Assert.Equal(0x45, _kbc.In(Data)); // kbd interrupt, system flag, translation

        _kbc.Out(Command, 0x60);
        _kbc.Out(Data, 0x74);
        _kbc.Out(Command, 0x20);
        Assert.Equal(0x74, _kbc.In(Data));

        _kbc.Out(Command, 0xAE); // enable keyboard clears bit 4
        _kbc.Out(Command, 0xA8); // enable aux clears bit 5
        _kbc.Out(Command, 0x20);
        Assert.Equal(0x44, _kbc.In(Data));
        Assert.Equal(0, _resets);
    }

    [Fact]
    public void AuxPortIsReportedAbsentWithoutATimeout()
    {
        // Linux's aux loop test: the echo must not carry the aux flag, so the test fails at once.
        _kbc.Out(Command, 0xD3);
        _kbc.Out(Data, 0x5A);
        byte status = _kbc.In(Command);
        Assert.Equal(0x01, status & 0x01);
        Assert.Equal(0, status & 0x20);

        // Its fallback aux interface test then reads a non-zero error code, replacing the stale byte.
        _kbc.Out(Command, 0xA9);
        Assert.Equal(0x01, _kbc.In(Data));
        Assert.Equal(0, _kbc.In(Command) & 0x01);
    }

    [Fact]
    public void KeyboardIdentifiesItselfOneInterruptPerByte()
    {
        _kbc.Out(Data, 0xF2);
        Assert.Equal(1, _irq.Count);
        Assert.Equal(0xFA, _kbc.In(Data));
        Assert.Equal(2, _irq.Count);
        Assert.Equal(0xAB, _kbc.In(Data));
        Assert.Equal(3, _irq.Count);
        Assert.Equal(0x83, _kbc.In(Data));
        Assert.Equal(3, _irq.Count);
        Assert.Equal(0, _kbc.In(Command) & 0x01);
    }

    [Fact]
    public void KeyboardCommandsWithParametersAreAcknowledgedTwice()
    {
        _kbc.Out(Data, 0xED); // set LEDs
        Assert.Equal(0xFA, _kbc.In(Data));
        _kbc.Out(Data, 0x00);
        Assert.Equal(0xFA, _kbc.In(Data));
        _kbc.Out(Data, 0xF0); // get scan code set
        _kbc.Out(Data, 0x00);
        Assert.Equal(0xFA, _kbc.In(Data)); // first ack, for the command
        Assert.Equal(0xFA, _kbc.In(Data));
        Assert.Equal(0x02, _kbc.In(Data));
    }

    [Fact]
    public void NoInterruptWhileKeyboardInterruptIsDisabled()
    {
        _kbc.Out(Command, 0x60);
        _kbc.Out(Data, 0x44);
        _kbc.Out(Data, 0xF4);
        Assert.Equal(0, _irq.Count);
        Assert.Equal(0x01, _kbc.In(Command) & 0x01);
        Assert.Equal(0xFA, _kbc.In(Data));
    }

    [Fact]
    public void SplitPortsReachTheSameController()
    {
        _kbc.CommandPort.Out(0, 0xAA);
        Assert.Equal(0x01, _kbc.CommandPort.In(0) & 0x01);
        Assert.Equal(0x55, _kbc.DataPort.In(0));
        _kbc.CommandPort.Out(0, 0xFE);
        Assert.Equal(1, _resets);
    }

    [Fact]
    public void PortsBetweenDataAndCommandAreInert()
    {
        _kbc.Out(1, 0xFE);
        _kbc.Out(3, 0xFE);
        Assert.Equal(0, _resets);
        Assert.Equal(0xFF, _kbc.In(1));
    }
}
