using System.Buffers.Binary;
using System.Diagnostics;
using StratoVirt.Devices.Legacy;
using Xunit;

namespace StratoVirt.Tests.Devices;

[Trait("Level", "Unit")]
public sealed class Ich9PowerManagementTests
{
    private long _now;
    private int _powerOffs;
    private readonly CountingInterruptLine _sci = new();
    private readonly Ich9PowerManagement _pm;

    public Ich9PowerManagementTests() => _pm = new Ich9PowerManagement(() => _powerOffs++, _sci, () => _now);

    private ushort Read16(ulong offset)
    {
        Span<byte> b = stackalloc byte[2];
        _pm.Read(offset, b);
        return BinaryPrimitives.ReadUInt16LittleEndian(b);
    }

    private void Write16(ulong offset, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        _pm.Write(offset, b);
    }

    [Fact]
    public void SciIsAlwaysEnabled()
    {
        Assert.Equal(1, Read16(4));
        Write16(4, 0);
        Assert.Equal(1, Read16(4));
    }

    [Fact]
    public void SleepTypeS5WithSleepEnablePowersOff()
    {
        Write16(4, 5 << 10); // type without SLP_EN: nothing yet
        Assert.Equal(0, _powerOffs);
        Assert.Equal((5 << 10) | 1, Read16(4));
        Write16(4, (3 << 10) | (1 << 13)); // S3 is not soft-off
        Assert.Equal(0, _powerOffs);
        Write16(4, (5 << 10) | (1 << 13));
        Assert.Equal(1, _powerOffs);
        Assert.Equal(0, Read16(4) & (1 << 13)); // SLP_EN reads as 0
    }

    [Fact]
    public void TimerCountsAt3579545HzAndIsReadOnly()
    {
        Span<byte> b = stackalloc byte[4];
        _now = Stopwatch.Frequency; // one second
        _pm.Read(8, b);
        Assert.Equal(3_579_545u, BinaryPrimitives.ReadUInt32LittleEndian(b));
        _pm.Write(8, b);
        _now = 2 * Stopwatch.Frequency;
        _pm.Read(8, b);
        Assert.Equal(7_159_090u, BinaryPrimitives.ReadUInt32LittleEndian(b));
    }

    [Fact]
    public void EnableKeepsItsDefinedBitsAndOutOfRangeReadsAllOnes()
    {
        Write16(2, 0xFFFF);
        Assert.Equal(0x0521, Read16(2));
        Span<byte> b = stackalloc byte[4];
        _pm.Read(10, b);
        Assert.Equal(0xFFFF_FFFFu, BinaryPrimitives.ReadUInt32LittleEndian(b));
    }

    private const ushort PowerButton = 1 << 8;

    [Fact]
    public void ThePowerButtonSetsItsStatusAndRaisesTheSciOnlyOnceEnabled()
    {
        _pm.PressPowerButton();
        Assert.Equal(PowerButton, Read16(0));
        Assert.False(_sci.Level); // PWRBTN_EN is off: status only
        Write16(2, PowerButton); // the guest's ACPI driver enables the event
        Assert.True(_sci.Level);
        Assert.Equal(1, _sci.Count);
        Write16(0, PowerButton); // it handles the event: write 1 to clear
        Assert.Equal(0, Read16(0));
        Assert.False(_sci.Level);
        _pm.PressPowerButton(); // enabled already: the SCI rises at once
        Assert.True(_sci.Level);
        Assert.Equal(2, _sci.Count);
    }

    [Fact]
    public void ClearingAnotherStatusBitOrWritingZeroKeepsThePowerButtonPending()
    {
        Write16(2, PowerButton);
        _pm.PressPowerButton();
        Write16(0, 1 << 0); // TMR_STS only
        Write16(0, 0);
        Assert.Equal(PowerButton, Read16(0));
        Assert.True(_sci.Level);
        Write16(2, 0); // the event disabled: the SCI drops, the status stays
        Assert.False(_sci.Level);
        Assert.Equal(PowerButton, Read16(0));
    }

    [Fact]
    public void ResetClearsStatusEnableAndSleepTypeAndDropsTheSci()
    {
        Write16(2, PowerButton);
        Write16(4, 5 << 10);
        _pm.PressPowerButton();
        Assert.True(_sci.Level);
        _pm.Reset();
        Assert.False(_sci.Level);
        Assert.Equal((0, 0, 1), (Read16(0), Read16(2), Read16(4))); // SCI_EN stays set
    }
}
