using StratoVirt.Devices.Legacy;
using Xunit;

namespace StratoVirt.Tests.Devices;

[Trait("Level", "Unit")]
public sealed class CmosRtcTests
{
    private const ulong Index = 0, Data = 1;

    // A Thursday, in a leap year, after noon: exercises BCD digits, day of week and the PM bit.
    private DateTime _now = new(2024, 2, 29, 13, 45, 7, DateTimeKind.Utc);
    private readonly CmosRtc _rtc;

    public CmosRtcTests() => _rtc = new CmosRtc(() => _now);

    private byte Reg(byte index)
    {
        _rtc.Out(Index, index);
        return _rtc.In(Data);
    }

    private void SetReg(byte index, byte value)
    {
        _rtc.Out(Index, index);
        _rtc.Out(Data, value);
    }

    [Fact]
    public void DefaultsToBcdAnd24Hours()
    {
        Assert.Equal(0x02, Reg(0x0B));
        Assert.Equal(0x07, Reg(0x00));
        Assert.Equal(0x45, Reg(0x02));
        Assert.Equal(0x13, Reg(0x04));
        Assert.Equal(0x05, Reg(0x06)); // Thursday; Sunday is 1
        Assert.Equal(0x29, Reg(0x07));
        Assert.Equal(0x02, Reg(0x08));
        Assert.Equal(0x24, Reg(0x09));
        Assert.Equal(0x20, Reg(0x32));
    }

    [Fact]
    public void BinaryModeEncodesPlainNumbers()
    {
        SetReg(0x0B, 0x06);
        Assert.Equal(7, Reg(0x00));
        Assert.Equal(45, Reg(0x02));
        Assert.Equal(13, Reg(0x04));
        Assert.Equal(29, Reg(0x07));
        Assert.Equal(2, Reg(0x08));
        Assert.Equal(24, Reg(0x09));
        Assert.Equal(20, Reg(0x32));
    }

    [Fact]
    public void TwelveHourModeSetsThePmBit()
    {
        SetReg(0x0B, 0x00); // BCD, 12-hour
        Assert.Equal(0x81, Reg(0x04));
        SetReg(0x0B, 0x04); // binary, 12-hour
        Assert.Equal(0x81, Reg(0x04));
        _now = new DateTime(2024, 2, 29, 0, 30, 0, DateTimeKind.Utc);
        Assert.Equal(12, Reg(0x04)); // 12 AM
    }

    [Fact]
    public void IndexBit7IsTheNmiMaskNotPartOfTheIndex()
    {
        _rtc.Out(Index, 0x89);
        Assert.True(_rtc.NmiDisabled);
        Assert.Equal(0x24, _rtc.In(Data)); // register 0x09, the year
        _rtc.Out(Index, 0x09);
        Assert.False(_rtc.NmiDisabled);
    }

    [Fact]
    public void StatusRegistersReportNoUpdateInProgressAndAGoodBattery()
    {
        Assert.Equal(0x26, Reg(0x0A));
        SetReg(0x0A, 0xA6); // UIP is read-only
        Assert.Equal(0x26, Reg(0x0A));
        Assert.Equal(0x80, Reg(0x0D));
        SetReg(0x0D, 0x00);
        Assert.Equal(0x80, Reg(0x0D));
    }

    [Fact]
    public void RegisterCReportsEachUpdateOnce()
    {
        Assert.Equal(0x00, Reg(0x0C));
        _now = _now.AddSeconds(1);
        Assert.Equal(0x10, Reg(0x0C));
        Assert.Equal(0x00, Reg(0x0C)); // reading cleared it
    }

    [Fact]
    public void RamBytesRoundTrip()
    {
        SetReg(0x40, 0x5A);
        SetReg(0x7F, 0xA5);
        Assert.Equal(0x5A, Reg(0x40));
        Assert.Equal(0xA5, Reg(0x7F));
        Assert.Equal(0x00, Reg(0x0E));
        Assert.Equal(0xFF, _rtc.In(Index)); // the index port is write-only
    }

    [Fact]
    public void SettingTheClockUnderTheSetBitMovesGuestTime()
    {
        SetReg(0x0B, 0x82);
        SetReg(0x32, 0x20);
        SetReg(0x09, 0x25);
        SetReg(0x08, 0x12);
        SetReg(0x07, 0x31);
        SetReg(0x04, 0x23);
        SetReg(0x02, 0x59);
        SetReg(0x00, 0x50);
        _now = _now.AddSeconds(5);
        Assert.Equal(0x50, Reg(0x00)); // frozen while SET is on
        SetReg(0x0B, 0x02);

        _now = _now.AddSeconds(15);
        Assert.Equal(0x05, Reg(0x00));
        Assert.Equal(0x00, Reg(0x02));
        Assert.Equal(0x00, Reg(0x04));
        Assert.Equal(0x01, Reg(0x07));
        Assert.Equal(0x01, Reg(0x08));
        Assert.Equal(0x26, Reg(0x09));
        Assert.Equal(0x05, Reg(0x06)); // 2026-01-01 is a Thursday
    }

    [Fact]
    public void SingleTimeWriteWithoutSetAppliesAtOnce()
    {
        SetReg(0x02, 0x10);
        Assert.Equal(0x10, Reg(0x02));
        Assert.Equal(0x13, Reg(0x04));
        Assert.Equal(0x07, Reg(0x00));
    }

    [Fact]
    public void InvalidDateIsIgnored()
    {
        SetReg(0x0B, 0x82);
        SetReg(0x07, 0x31); // 31 February
        SetReg(0x0B, 0x02);
        Assert.Equal(0x29, Reg(0x07));
        SetReg(0x00, 0x5A); // not BCD
        Assert.Equal(0x07, Reg(0x00));
    }

    [Fact]
    public void MemorySizesAreWhereFirmwareReadsThem()
    {
        _rtc.SetMemorySize(0x8000_0000, 6UL << 30); // 2 GiB low, 6 GiB from 4 GiB
        Assert.Equal(640, Reg(0x15) | Reg(0x16) << 8);
        Assert.Equal(0xFFFF, Reg(0x17) | Reg(0x18) << 8); // capped
        Assert.Equal(0xFFFF, Reg(0x30) | Reg(0x31) << 8);
        Assert.Equal((0x8000_0000 - (16 << 20)) >> 16, (uint)(Reg(0x34) | Reg(0x35) << 8));
        Assert.Equal((6L << 30) >> 16, (long)(Reg(0x5B) | Reg(0x5C) << 8 | Reg(0x5D) << 16));

        _rtc.SetMemorySize(32 << 20, 0);
        Assert.Equal(31 << 10, Reg(0x17) | Reg(0x18) << 8);
        Assert.Equal(16 << 4, Reg(0x34) | Reg(0x35) << 8);
        Assert.Equal(0, Reg(0x5B) | Reg(0x5C) | Reg(0x5D));
    }
}
