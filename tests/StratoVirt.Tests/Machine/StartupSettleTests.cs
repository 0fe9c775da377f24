using StratoVirt.Machine;
using Xunit;

namespace StratoVirt.Tests.Machine;

/// <summary>When start-up counts as over: after a quiet stretch of the main loop, at the latest a fixed time after the
/// vCPUs started, and only once.</summary>
[Trait("Level", "Unit")]
public sealed class StartupSettleTests
{
    private const long Start = 10_000;

    [Fact]
    public void AQuietLoopSettlesOnceAfterTheQuietStretch()
    {
        var s = new StartupSettle(Start);
        Assert.Equal(StartupSettle.QuietMs, s.TimeoutMs(Start));
        Assert.False(s.Observe(0, Start + StartupSettle.QuietMs - 1));
        Assert.Equal(1, s.TimeoutMs(Start + StartupSettle.QuietMs - 1));
        Assert.True(s.Observe(0, Start + StartupSettle.QuietMs));
        Assert.True(s.Settled);
        Assert.False(s.Observe(0, Start + 5 * StartupSettle.QuietMs));
        Assert.Equal(-1, s.TimeoutMs(Start + 5 * StartupSettle.QuietMs));
    }

    [Fact]
    public void WorkOnTheLoopStartsTheQuietStretchAgain()
    {
        var s = new StartupSettle(Start);
        long busy = Start + StartupSettle.QuietMs - 10;
        Assert.False(s.Observe(3, busy));
        Assert.Equal(StartupSettle.QuietMs, s.TimeoutMs(busy));
        Assert.False(s.Observe(0, busy + StartupSettle.QuietMs - 1));
        Assert.True(s.Observe(0, busy + StartupSettle.QuietMs));
    }

    [Fact]
    public void ALoopThatNeverGoesQuietSettlesAtTheLatest()
    {
        var s = new StartupSettle(Start);
        long now = Start;
        for (; now < Start + StartupSettle.LatestMs; now += 50)
        {
            Assert.False(s.Observe(1, now));
            Assert.InRange(s.TimeoutMs(now), 0, StartupSettle.LatestMs - (now - Start));
        }
        Assert.True(s.Observe(1, now));
    }

    [Fact]
    public void ALateTurnSettlesAtOnceAndTheTimeoutNeverGoesNegativeBeforeThat()
    {
        var s = new StartupSettle(Start);
        Assert.Equal(0, s.TimeoutMs(Start + 10 * StartupSettle.LatestMs));
        Assert.True(s.Observe(7, Start + 10 * StartupSettle.LatestMs));
    }

    [Theory]
    [InlineData(-1, -1, -1)]
    [InlineData(-1, 20, 20)]
    [InlineData(150, -1, 150)]
    [InlineData(150, 20, 20)]
    [InlineData(0, 20, 0)]
    public void TheSoonerOfTwoTimeoutsIsTaken(int a, int b, int expected) => Assert.Equal(expected, StartupSettle.Sooner(a, b));
}
