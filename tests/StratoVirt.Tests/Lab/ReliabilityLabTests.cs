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

    [Fact]
    public void ASocketChardevPeerKilledMidStreamIsLoggedOnceAndANewPeerGetsTheOutputAgain()
    {
        var s = LabSession.Instance.Ended("chardev-gone", output);
        Assert.True(s.ExitCode == 0, s.Text);
        // The guest ran to its end (its serial console went to the second peer).
        Assert.True(s.OutputContains("CG-SER2 GUEST-TEST-END chardev-gone rc=0"), s.Text);
        foreach (string kind in new[] { "ser", "hvc" })
        {
            // Bytes went both ways with the first peer, which was then killed with SIGKILL.
            Assert.Contains($"HOST-CG-EXCHANGE-1 {kind} ok", s.Output);
            Assert.Contains($"HOST-CG-KILLED {kind}", s.Output);
            // A second peer connects to the same socket, receives the guest's output and exchanges bytes again.
            Assert.Contains($"HOST-CG-OUTPUT-AGAIN {kind} ok", s.Output);
            Assert.Contains($"HOST-CG-EXCHANGE-2 {kind} ok", s.Output);
        }
        // The guest went on writing while no peer was there, and the VMM ran on and answered QMP.
        Assert.True(int.Parse(s.GuestMarker("HOST-CG-TICKS-WHILE-GONE")!) > 0, s.Text);
        s.AssertMarker("HOST-CG-VMM-AFTER-KILL", "alive");
        Assert.Contains("\"status\":\"running\"", s.GuestMarker("HOST-CG-QMP-AFTER-KILL") ?? "");
        // No busy loop on the dead connection: the main thread (which serves the chardevs) used well under a second
        // of the 5 s (clock ticks of 10 ms).
        Assert.InRange(long.Parse(s.GuestMarker("HOST-CG-MAIN-THREAD-TICKS-IN-5S")!), 0, 100);
        // Each disappearance is logged once, not per write; each peer's connection once.
        foreach (var (id, path) in new[] { ("ser0", "/tmp/cg/ser.sock"), ("con0", "/tmp/cg/hvc.sock") })
        {
            Assert.Equal(1, s.Output.Count(l => l.EndsWith($"chardev '{id}': client disconnected from {path}", StringComparison.Ordinal)));
            Assert.Equal(2, s.Output.Count(l => l.EndsWith($"chardev '{id}': client connected on {path}", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void UnderDiskNetTimerAndQmpLoadNothingFailsNoInterruptIsLostAndNoFdLeaks()
    {
        var s = LabSession.Instance.Ended("soak-short", output);
        foreach (var line in s.Output.Where(l => l.StartsWith("SOAK-", StringComparison.Ordinal) && !l.StartsWith("SOAK-SAMPLE", StringComparison.Ordinal)))
            output.WriteLine(line);
        // The guest ran its load to the end and powered off.
        Assert.True(s.ExitCode == 0, SoakDigest(s));
        Assert.True(s.OutputContains("GUEST-TEST-END soak rc=0"), SoakDigest(s));
        Assert.Equal($"cpus={ReliabilityScenarios.SoakCpus} secs={ReliabilityScenarios.SoakSeconds}", s.GuestMarker("SOAK-LOAD-START"));
        // QMP: polled all along, every request answered, none an error.
        var qmp = Fields(s, "QMP-POLL");
        Assert.True(int.Parse(qmp["sent"]) >= ReliabilityScenarios.SoakSeconds * 50, s.Text);
        Assert.Equal(qmp["sent"], qmp["answered"]);
        Assert.Equal("0", qmp["errors"]);
        Assert.Equal("signal", qmp["ended"]);
        // Disk: both workers finished, every read matched the last write, no request failed.
        var disks = s.Output.Where(l => l.StartsWith("SOAK-DISK-END ", StringComparison.Ordinal)).ToList();
        Assert.True(disks.Count == 2, s.Text);
        foreach (var d in disks)
        {
            Assert.Contains("mismatches=0 errors=0", d);
            Assert.DoesNotContain(" writes=0 ", d);
        }
        // Network: every 4 MiB copy arrived intact; pings were answered.
        var tcp = Fields(s, "SOAK-NET-TCP");
        Assert.True(int.Parse(tcp["rounds"]) > 0, s.Text);
        Assert.Equal(("0", "0"), (tcp["bad"], tcp["failed"]));
        Assert.True(int.Parse(Fields(s, "SOAK-NET-PING")["received"]) > 0, s.Text);
        // Interrupts: both devices raised some, nothing was left in flight, and the guest kernel reported no
        // timeout, hung task or I/O error (a lost interrupt shows as one of these).
        var irqs = s.Output.Where(l => l.StartsWith("SOAK-IRQ ", StringComparison.Ordinal)).ToList();
        foreach (var device in new[] { "vda", "eth0" })
            Assert.True(irqs.Any(l => l.Contains($"device={device} ", StringComparison.Ordinal) && !l.EndsWith(" delta=0", StringComparison.Ordinal)), s.Text);
        Assert.Equal("0", Fields(s, "SOAK-BLK")["inflight"]);
        s.AssertMarker("SOAK-DMESG-PROBLEMS", "n=0");
        // No fd leaked under the load, and the VMM logged no error.
        Assert.Equal("0", Fields(s, "SOAK-GROWTH")["fds"]);
        Assert.Equal("0", Fields(s, "SOAK-VMM-LOG")["errors"]);
    }

    /// <summary>A soak's outcome in a few lines, first in a failure message (CI keeps only its first 40 lines):
    /// how the VMM ended and why, how many attempts the lab made (a guest triple fault earns a rerun), the QMP poll,
    /// the VMM's warnings and errors, and the guest console's last lines and any kernel trouble in it.</summary>
    private static string SoakDigest(LabScenario s)
    {
        int attempts = LabSession.Instance.Log.AttemptsOf(s.Name);
        var keys = s.Output.Where(l => l.StartsWith("SOAK-VMM-", StringComparison.Ordinal) ||
            l.StartsWith("QMP-POLL ", StringComparison.Ordinal) || l.Contains(" WARN ", StringComparison.Ordinal) ||
            l.Contains(" ERROR ", StringComparison.Ordinal) || l.Contains(" stopped: ", StringComparison.Ordinal) ||
            KernelTrouble().IsMatch(l));
        var console = s.Output.Where(l => !l.StartsWith("SOAK-", StringComparison.Ordinal) &&
            !l.StartsWith("QMP-POLL", StringComparison.Ordinal) && !l.StartsWith("20", StringComparison.Ordinal)).TakeLast(12);
        return $"rc={s.ExitCode} attempts={attempts}\n{string.Join('\n', keys.Take(20))}\n-- console's last lines --\n{string.Join('\n', console)}";
    }

    [GeneratedRegex(@"Kernel panic|Oops|BUG:|general protection|Call Trace|triple fault|KVM_EXIT", RegexOptions.IgnoreCase)]
    private static partial Regex KernelTrouble();

    /// <summary>The key=value fields of the first line with <paramref name="marker"/>.</summary>
    private static Dictionary<string, string> Fields(LabScenario s, string marker) =>
        (s.GuestMarker(marker) ?? throw new Xunit.Sdk.XunitException($"no {marker} line:\n{s.Text}"))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(f => f.Split('=', 2)).Where(kv => kv.Length == 2)
            .ToDictionary(kv => kv[0], kv => kv[1]);

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
