namespace StratoVirt.Tests.Lab;

/// <summary>Debian's cloud kernel in the nested lab, ended from the host over QMP or by itself, with a QMP client
/// connected (see <see cref="LifecycleScenarios"/>).</summary>
[Trait("Level", "Lab")]
public sealed class LifecycleLabTests
{
    private static LabScenario Run(string name)
    {
        var s = LabSession.Instance.Log[name];
        Assert.True(s.Ended, $"{name} did not finish (log: {LabSession.Instance.LogPath})");
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.Equal("0", s.GuestMarker("HOST-VMM-EXIT"));
        Assert.Equal("rc=0", s.GuestMarker("HOST-QMP-CLIENT"));
        Assert.Equal("removed", s.GuestMarker("HOST-QMP-SOCKET"));
        return s;
    }

    private static string Event(LabScenario s, string name) =>
        Assert.Single(s.Output, l => l.StartsWith($"HOST-QMP {{\"event\":\"{name}\"", StringComparison.Ordinal));

    [Fact]
    public void SystemPowerdownEndsARunningLinuxGuestWithPowerdownAndShutdown()
    {
        var s = Run("qmp-powerdown");
        Assert.True(s.OutputContains("GUEST-TICK 0"), s.Text);
        Assert.Equal("HOST-QMP {\"return\":{}}", Assert.Single(s.Output, l => l.StartsWith("HOST-QMP {\"return\"", StringComparison.Ordinal)));
        Event(s, "POWERDOWN");
        Assert.StartsWith("HOST-QMP {\"event\":\"SHUTDOWN\",\"data\":{\"guest\":false,\"reason\":\"host-qmp-quit\"}", Event(s, "SHUTDOWN"));
        var lines = s.Output.ToList();
        Assert.True(lines.FindIndex(l => l.Contains("\"POWERDOWN\"")) < lines.FindIndex(l => l.Contains("\"SHUTDOWN\"")), s.Text);
    }

    [Fact]
    public void GuestPoweroffTellsTheClientShutdownByTheGuest()
    {
        var s = Run("qmp-guest-poweroff");
        Assert.Equal("poweroff", s.GuestMarker("GUEST-ACTION"));
        Assert.StartsWith("HOST-QMP {\"event\":\"SHUTDOWN\",\"data\":{\"guest\":true,\"reason\":\"guest-shutdown\"}", Event(s, "SHUTDOWN"));
    }

    [Fact]
    public void GuestRebootTellsTheClientResetThenShutdownByTheGuest()
    {
        var s = Run("qmp-guest-reboot");
        Assert.Equal("reboot", s.GuestMarker("GUEST-ACTION"));
        const string Data = "\"data\":{\"guest\":true,\"reason\":\"guest-reset\"}";
        Assert.StartsWith($"HOST-QMP {{\"event\":\"RESET\",{Data}", Event(s, "RESET"));
        Assert.StartsWith($"HOST-QMP {{\"event\":\"SHUTDOWN\",{Data}", Event(s, "SHUTDOWN"));
    }
}
