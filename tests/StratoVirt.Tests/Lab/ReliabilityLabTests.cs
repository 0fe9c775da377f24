using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>Host faults under a running Linux guest, and crash durability, in the nested lab (see
/// <see cref="ReliabilityScenarios"/>).</summary>
[Trait("Level", "Lab")]
public sealed partial class ReliabilityLabTests(ITestOutputHelper output)
{
    [Fact]
    public void AFullOrFailingHostDiskGivesTheGuestAnIoErrorAndAQmpEventAndWorksOnceCleared()
    {
        var s = LabSession.Instance.Ended("blk-fault", output);
        // The VMM ran on through both faults: the guest finished its test and powered off.
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.True(s.OutputContains("GUEST-TEST-END blk-fault rc=0"), s.Text);

        // ENOSPC: the guest's write failed, and once the host had room the retry wrote everything.
        Assert.StartsWith("write failed", s.GuestMarker("GUEST-FAULT-ENOSPC") ?? "", StringComparison.Ordinal);
        s.AssertMarker("HOST-FAULT-ENOSPC", "cleared");
        s.AssertMarker("GUEST-FAULT-ENOSPC-RETRY", "succeeded");
        s.AssertMarker("GUEST-FAULT-ENOSPC-DATA", "intact");

        // EIO: reads and writes failed while the table was "error"; afterwards the data written before is there.
        s.AssertMarker("HOST-FAULT-EIO", "armed");
        s.AssertMarker("GUEST-FAULT-EIO-READ", "failed");
        s.AssertMarker("GUEST-FAULT-EIO-WRITE", "failed");
        s.AssertMarker("GUEST-FAULT-EIO-RETRY", "succeeded");
        s.AssertMarker("GUEST-FAULT-EIO-DATA", "intact");

        // QMP: BLOCK_IO_ERROR when a condition starts, not for each failed request: the flaky disk failed several
        // requests in a row (reads, a write, the retries) and was reported once.
        var events = s.Output.Where(l => l.StartsWith("HOST-QMP-EVENT ", StringComparison.Ordinal)).ToList();
        string all = string.Join('\n', events);
        var io = events.Where(l => l.Contains("\"BLOCK_IO_ERROR\"", StringComparison.Ordinal)).ToList();
        Assert.True(io.Any(l => l.Contains("\"device\":\"full\",\"operation\":\"write\",\"action\":\"report\",\"nospace\":true", StringComparison.Ordinal)), all);
        var flaky = io.Where(l => l.Contains("\"device\":\"flaky\"", StringComparison.Ordinal)).ToList();
        Assert.True(flaky.Count == 1, all);
        Assert.Contains("\"operation\":\"read\",\"action\":\"report\",\"nospace\":false", flaky[0]);
        Assert.Contains(events, l => l.Contains("\"SHUTDOWN\"", StringComparison.Ordinal));
        // The log: a warning when a condition starts, and a line when I/O works again, with the count.
        var recovered = Recovered().Match(s.Text);
        Assert.True(recovered.Success, s.Text);
        Assert.True(int.Parse(recovered.Groups["n"].Value) >= 2, recovered.Value);
        Assert.Equal(io.Count, s.Output.Count(l => l.Contains("the guest gets an I/O error for each request", StringComparison.Ordinal)));
        Assert.Contains(s.Output, l => l.Contains("virtio-blk full: I/O on /tmp/full/disk.img works again;", StringComparison.Ordinal));
    }

    [Fact]
    public void ATapDeletedUnderTheVmStopsTheNicOnceWithoutSpinningAndTheGuestRunsOn()
    {
        var s = LabSession.Instance.Ended("tap-gone", output);
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.True(s.OutputContains("GUEST-TEST-END tap-gone rc=0"), s.Text);
        s.AssertMarker("GUEST-TAPGONE-PING-BEFORE", "ok");
        s.AssertMarker("HOST-TAPGONE", "deleted");
        // The guest's frames go nowhere now: its pings fail, and it keeps running.
        s.AssertMarker("GUEST-TAPGONE-PING-AFTER", "failed");
        Assert.NotNull(s.GuestMarker("GUEST-TAPGONE-ALIVE"));
        // No busy loop on the dead tap: the main thread (which serves the NIC) used well under a second of the 5 s
        // (clock ticks of 10 ms).
        Assert.InRange(long.Parse(s.GuestMarker("HOST-TAPGONE-MAIN-THREAD-TICKS-IN-5S")!), 0, 100);
        // Logged once, not per frame.
        Assert.Equal(1, s.Output.Count(l => l.Contains("virtio-net eth0: backend", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("direct-on")]
    [InlineData("direct-off")]
    [InlineData("iothread")]
    public void EveryRecordAcknowledgedBeforeTheVmmWasKilledIsOnTheDisk(string config)
    {
        var s = LabSession.Instance.Ended($"durability-{config}", output);
        foreach (var line in s.Output.Where(l => l.StartsWith("DUR-", StringComparison.Ordinal))) output.WriteLine(line);
        var summary = Summary().Match(s.GuestMarker("DUR-SUMMARY") ?? "");
        Assert.True(summary.Success, s.Text);
        Assert.Equal(config, summary.Groups["config"].Value);
        Assert.Equal(ReliabilityScenarios.TestTrials, int.Parse(summary.Groups["trials"].Value));
        // Boots in which the guest acknowledged nothing (the emulated lab's stalls) were tried again; shown, not
        // failed on: nothing was written in them.
        output.WriteLine($"{summary.Groups["failed"].Value} boot(s) without an acknowledgement were tried again");
        // Each trial acknowledged at least its first record before the kill.
        Assert.True(int.Parse(summary.Groups["acked"].Value) >= ReliabilityScenarios.TestTrials, s.Text);
        Assert.Equal(0, int.Parse(summary.Groups["lost"].Value));
        Assert.True(s.ExitCode == 0, s.Text);
    }

    [GeneratedRegex(@"virtio-blk flaky: I/O on /dev/mapper/svflaky works again; (?<n>\d+) request\(s\) failed")]
    private static partial Regex Recovered();

    [GeneratedRegex(@"^config=(?<config>\S+) trials=(?<trials>\d+) failed=(?<failed>\d+) acked=(?<acked>\d+) lost=(?<lost>\d+)$")]
    private static partial Regex Summary();
}
