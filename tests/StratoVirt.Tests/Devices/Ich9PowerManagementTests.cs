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
    private readonly Ich9PowerManagement _pm;

    public Ich9PowerManagementTests() => _pm = new Ich9PowerManagement(() => _powerOffs++, () => _now);

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
}
