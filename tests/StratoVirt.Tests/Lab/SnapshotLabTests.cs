using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>A real Linux guest snapshotted mid-count and restored after its VMM was SIGKILLed (see
/// <see cref="SnapshotScenarios"/>).</summary>
[Trait("Level", "Lab")]
public sealed class SnapshotLabTests(ITestOutputHelper output)
{
    private LabScenario Run()
    {
        var s = LabSession.Instance.Ended("snapshot-linux", output);
        Assert.True(s.ExitCode == 0, s.Text);
        return s;
    }

    /// <summary>The whole GUEST-SNAP-TICK lines one VMM printed: tick number and guest uptime.</summary>
    private static List<(int Tick, double Uptime)> Ticks(LabScenario s, string vmm) =>
        s.Output.Select(l => TickLine.Match(l))
            .Where(m => m.Success && m.Groups[1].Value == vmm)
            .Select(m => (int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)))
            .ToList();

    private static readonly Regex TickLine = new(@"^(BEFORE|AFTER)\|GUEST-SNAP-TICK (\d+) (\d+\.\d+)$");

    /// <summary>Whether the first VMM's console ends in the middle of a tick line (the UART was paused mid-line), so
    /// that tick shows whole in neither output.</summary>
    private static bool CutTick(LabScenario s) =>
        s.Output.LastOrDefault(l => l.StartsWith("BEFORE|", StringComparison.Ordinal)) is { } last &&
        last.StartsWith("BEFORE|GUEST-SNAP", StringComparison.Ordinal) && !TickLine.IsMatch(last);

    [Fact]
    public void TheSnapshotIsTakenFromThePausedGuest()
    {
        var s = Run();
        Assert.Contains("{\"return\":{}}", s.GuestMarker("HOST-SNAP-STOP"));
        string migrate = s.GuestMarker("HOST-SNAP-MIGRATE") ?? "";
        Assert.Contains("{\"return\":{}}", migrate);
        Assert.Contains("{\"return\":{\"status\":\"completed\"}}", migrate);
        Assert.Equal("137", s.GuestMarker("HOST-SNAP-KILLED")); // SIGKILL, not an orderly end
        Assert.Contains("\"status\":\"running\"", s.GuestMarker("HOST-SNAP-RESTORED"));
        Assert.Equal("0", s.GuestMarker("HOST-SNAP-VMM-EXIT"));
    }

    [Fact]
    public void TheCounterContinuesWhereItStoppedAndUptimeDidNotRestart()
    {
        var s = Run();
        var before = Ticks(s, "BEFORE");
        var after = Ticks(s, "AFTER");
        Assert.True(before.Count >= 9, s.Text);
        Assert.NotEmpty(after);
        Assert.Equal(before[^1].Tick + (CutTick(s) ? 2 : 1), after[0].Tick);
        Assert.Equal(39, after[^1].Tick);
        Assert.True(after[0].Uptime > before[^1].Uptime, $"uptime went from {before[^1].Uptime} to {after[0].Uptime}");
        // The guest clock stood still while the VM was stopped, killed and restored: one tick's sleep, not more.
        Assert.True(after[0].Uptime - before[^1].Uptime < 5, $"uptime jumped from {before[^1].Uptime} to {after[0].Uptime}");
        // No second boot: the restored VMM's console shows no init.
        Assert.DoesNotContain(s.Output, l => l.StartsWith("AFTER|GUEST-INIT", StringComparison.Ordinal));
        Assert.Contains(s.Output, l => l == "AFTER|GUEST-TEST-END snapshot rc=0");
    }

    [Fact]
    public void TheFileOnTheDiskHoldsEveryTickInOrder()
    {
        var s = Run();
        Assert.Contains(s.Output, l => l == "AFTER|GUEST-SNAP-FILE ok 40");
    }

    [Fact]
    public void TheHostAnswersPingBeforeAndAfterTheRestore()
    {
        var s = Run();
        Assert.Contains(s.Output, l => l == "BEFORE|GUEST-SNAP-PING-BEFORE ok");
        Assert.Contains(s.Output, l => l == "AFTER|GUEST-SNAP-PING-AFTER ok");
    }
}
