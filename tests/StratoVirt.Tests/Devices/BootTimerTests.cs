using StratoVirt.Devices.Legacy;
using Xunit;

namespace StratoVirt.Tests.Devices;

[Trait("Level", "Unit")]
public sealed class BootTimerTests
{
    private readonly BootTimer _timer;
    private int _signals;

    public BootTimerTests() => _timer = new BootTimer(() => _signals++);

    [Fact]
    public void OnlyASingleByte123AtOffsetZeroSignals()
    {
        _timer.Write(1, [123]);
        _timer.Write(0, [124]);
        _timer.Write(0, [123, 0]);
        _timer.Write(0, [123, 0, 0, 0]);
        Assert.Equal(0, _signals);
        _timer.Write(0, [123]);
        Assert.Equal(1, _signals);
    }

    [Fact]
    public void ReadsReturnZeroes()
    {
        byte[] buffer = [0xFF, 0xFF, 0xFF, 0xFF];
        _timer.Read(0, buffer);
        Assert.Equal(new byte[4], buffer);
        _timer.Out(0, 123);
        Assert.Equal(0, _timer.In(0x800));
        Assert.Equal(1, _signals);
    }
}
