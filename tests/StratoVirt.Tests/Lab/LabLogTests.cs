namespace StratoVirt.Tests.Lab;

/// <summary>The lab console log parser, against hand-written logs shaped like scripts/lab/run.sh output.</summary>
[Trait("Level", "Unit")]
public sealed class LabLogTests
{
    // CRLF line ends as the outer serial console writes them (inner output has \r\r\n), firmware escapes in front
    // of the first marker, a kernel message inside a scenario, a timeout, a failing VMM and a note.
    private const string Log =
        "SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n" +
        "Booting from ROM...\r\n" +
        "\x1b" + "c\x1b[?7l\x1b[2J\r\n" +
        "@@LAB INIT uptime=3.36\r\n" +
        "@@LAB KVM-OK\r\n" +
        "@@BEGIN qemu-poweroff\r\n" +
        "Probing EDD (edd=off to disable)... ok\r\r\n" +
        "GUEST-INIT uptime=15.44\r\r\n" +
        "GUEST-UNAME Linux (none) 6.1.0-56-cloud-amd64 #1 SMP PREEMPT_DYNAMIC x86_64 GNU/Linux\r\r\n" +
        "GUEST-CPUS 1\r\r\n" +
        "GUEST-MEMTOTAL-KB 222756\r\r\n" +
        "\tindented kernel line\r\n" +
        "[   16.000000] reboot: Power down\r\r\n" +
        "@@INIT qemu-poweroff ms=28950\r\n" +
        "@@END qemu-poweroff rc=0 wall_ms=29770\r\n" +
        "@@NOTE skipping the rest: no VMM\r\n" +
        "@@BEGIN ours-smp1\r\n" +
        "stratovirt: /dev/kvm does not exist\r\n" +
        "@@END ours-smp1 rc=1 wall_ms=40\r\n" +
        "@@BEGIN hang\r\n" +
        "GUEST-INIT uptime=1.5\r\n" +
        "guest# \r\n" +
        "@@INIT hang ms=900\r\n" +
        "@@END hang rc=124 wall_ms=120010\r\n" +
        "@@LAB DONE\r\n" +
        "[   99.1] reboot: Power down\r\n";

    [Fact]
    public void ReadsTheOuterVmMarkers()
    {
        LabLog log = LabLog.Parse(Log);
        Assert.True(log.KvmOk);
        Assert.False(log.KvmMissing);
        Assert.True(log.Done);
        Assert.Equal(3.36, log.OuterInitUptime);
        Assert.Empty(log.FailedModules);
        Assert.Equal(["skipping the rest: no VMM"], log.Notes);
    }

    [Fact]
    public void ReadsScenarioResultsInOrder()
    {
        LabLog log = LabLog.Parse(Log);
        Assert.Equal(["qemu-poweroff", "ours-smp1", "hang"], log.Scenarios.Select(s => s.Name));

        LabScenario boot = log["qemu-poweroff"];
        Assert.Equal(0, boot.ExitCode);
        Assert.Equal(29770, boot.WallMs);
        Assert.Equal(28950, boot.InitMs);
        Assert.True(boot.Ended);
        Assert.False(boot.TimedOut);

        LabScenario failed = log["ours-smp1"];
        Assert.Equal(1, failed.ExitCode);
        Assert.Equal(40, failed.WallMs);
        Assert.Null(failed.InitMs);
        Assert.Null(failed.GuestUptimeAtInit);
        Assert.Equal(["stratovirt: /dev/kvm does not exist"], failed.Output);

        LabScenario hang = log["hang"];
        Assert.True(hang.TimedOut);
        Assert.Equal(900, hang.InitMs);
    }

    [Fact]
    public void OutputHasNoCarriageReturnsNorMarkers()
    {
        LabScenario boot = LabLog.Parse(Log)["qemu-poweroff"];
        Assert.Equal(7, boot.Output.Count);
        Assert.Equal("Probing EDD (edd=off to disable)... ok", boot.Output[0]);
        Assert.Equal("\tindented kernel line", boot.Output[5]);
        Assert.All(boot.Output, line => Assert.DoesNotContain('\r', line));
        Assert.All(boot.Output, line => Assert.False(line.StartsWith("@@", StringComparison.Ordinal)));
    }

    [Fact]
    public void ReadsGuestMarkers()
    {
        LabScenario boot = LabLog.Parse(Log)["qemu-poweroff"];
        Assert.Equal(15.44, boot.GuestUptimeAtInit);
        Assert.Equal("1", boot.GuestMarker("GUEST-CPUS"));
        Assert.Equal("222756", boot.GuestMarker("GUEST-MEMTOTAL-KB"));
        Assert.StartsWith("Linux (none) 6.1.0-56-cloud-amd64", boot.GuestMarker("GUEST-UNAME"));
        Assert.Null(boot.GuestMarker("GUEST-SHELL"));
        Assert.Null(boot.GuestMarker("GUEST-CPU")); // a prefix of a marker is not that marker
        Assert.True(boot.OutputContains("reboot: Power down"));
    }

    [Fact]
    public void FindsAMarkerThatLandedAfterAnotherLinesText()
    {
        const string log = "@@BEGIN glued\nGUEST-TEST-END vsock rc=0HOST-VSOCK-ECHOED abc123\nX-HOST-ONLY 1\n@@END glued rc=0 wall_ms=5\n";
        LabScenario s = LabLog.Parse(log)["glued"];
        Assert.Equal("abc123", s.GuestMarker("HOST-VSOCK-ECHOED"));
        Assert.Null(s.GuestMarker("HOST-ONLY")); // inside a longer name
    }

    [Fact]
    public void AnUnfinishedRunHasAnOpenScenarioAndNoDone()
    {
        const string Truncated =
            "@@LAB INIT uptime=4.1\n" +
            "@@LAB INSMOD-FAILED kvm-amd\n" +
            "@@LAB KVM-MISSING\n" +
            "@@BEGIN first\n" +
            "GUEST-INIT uptime=2.00\n" +
            "half a li";
        LabLog log = LabLog.Parse(Truncated);
        Assert.False(log.KvmOk);
        Assert.True(log.KvmMissing);
        Assert.False(log.Done);
        Assert.Equal(["kvm-amd"], log.FailedModules);

        LabScenario first = Assert.Single(log.Scenarios);
        Assert.False(first.Ended);
        Assert.Null(first.ExitCode);
        Assert.Null(first.WallMs);
        Assert.Equal(2.0, first.GuestUptimeAtInit);
        Assert.Equal(["GUEST-INIT uptime=2.00", "half a li"], first.Output);
    }

    [Fact]
    public void ABeginWithoutEndIsClosedByTheNextBegin()
    {
        LabLog log = LabLog.Parse("@@BEGIN a\nx\n@@BEGIN b\ny\n@@END b rc=3 wall_ms=5\n");
        Assert.False(log["a"].Ended);
        Assert.Equal(["x"], log["a"].Output);
        Assert.Equal(3, log["b"].ExitCode);
    }

    [Fact]
    public void ARetriedScenarioIsReadFromItsLastAttempt()
    {
        LabLog log = LabLog.Parse(
            "@@BEGIN boot\nstuck\n@@HUNG 9/10 CPU 0/KVM state=S syscall=1 wchan=pipe_write\n" +
            "@@END boot rc=124 wall_ms=90000\n@@RETRY boot attempt=2\n" +
            "@@BEGIN boot\nGUEST-INIT uptime=1.5\n@@END boot rc=0 wall_ms=9000\n");
        Assert.Equal(2, log.AttemptsOf("boot"));
        Assert.Equal(0, log.AttemptsOf("other"));
        Assert.Equal(0, log["boot"].ExitCode);
        Assert.True(log.Scenarios[0].TimedOut);
        Assert.Contains("@@HUNG 9/10 CPU 0/KVM state=S syscall=1 wchan=pipe_write", log.Scenarios[0].Output);
    }

    [Fact]
    public void AMissingScenarioNamesTheOnesThere()
    {
        LabLog log = LabLog.Parse(Log);
        Assert.False(log.TryGetScenario("nope", out _));
        var e = Assert.Throws<KeyNotFoundException>(() => log["nope"]);
        Assert.Contains("qemu-poweroff", e.Message);
    }

    [Fact]
    public void AnEmptyLogHasNothing()
    {
        LabLog log = LabLog.Parse("");
        Assert.Empty(log.Scenarios);
        Assert.Empty(log.Lines);
        Assert.False(log.Done);
        Assert.Null(log.OuterInitUptime);
    }

    [Fact]
    public void ABootResumingADeadOneKeepsItsFinishedScenariosAndTakesTheRestFromTheNewBoot()
    {
        // The first outer boot finished "a", then its kernel panicked inside "b"; the second ran "b" and "c".
        LabLog first = LabLog.Parse("@@LAB KVM-OK\n@@BEGIN a\nA-OUT\n@@END a rc=0 wall_ms=5\n@@BEGIN b\n" +
            "Kernel panic - not syncing\n");
        LabLog second = LabLog.Parse("@@LAB KVM-OK\n@@BEGIN b\n@@END b rc=0 wall_ms=7\n@@BEGIN c\n" +
            "@@END c rc=3 wall_ms=9\n@@LAB DONE\n");
        Assert.False(first.Done);
        LabLog run = LabLog.Resume(first, second);
        Assert.True(run.Done);
        Assert.True(run.KvmOk);
        Assert.Equal(["a", "b", "c"], run.Scenarios.Select(s => s.Name));
        Assert.Equal(["A-OUT"], run["a"].Output);
        Assert.Equal(0, run["b"].ExitCode);
        Assert.Equal(3, run["c"].ExitCode);
        Assert.Equal(1, run.AttemptsOf("b"));
    }

    [Fact]
    public void ARerunThatDidNotFinishLeavesTheEarlierResultStanding()
    {
        // "soak" triple-faulted in the first outer VM; the fresh one died inside its rerun.
        LabLog first = LabLog.Parse("@@LAB KVM-OK\n@@BEGIN soak\nstratovirt: vCPU 2: guest triple fault (KVM_EXIT_SHUTDOWN)\n" +
            "@@END soak rc=1 wall_ms=9\n@@LAB DONE\n");
        LabLog second = LabLog.Parse("@@LAB KVM-OK\n@@BEGIN soak\nKernel panic - not syncing\n");
        LabLog run = LabLog.Resume(first, second);
        Assert.Equal(1, run["soak"].ExitCode);
        Assert.Equal(2, run.AttemptsOf("soak"));
        // A rerun that finished is read instead.
        LabLog third = LabLog.Parse("@@LAB KVM-OK\n@@BEGIN soak\n@@END soak rc=0 wall_ms=7\n@@LAB DONE\n");
        Assert.Equal(0, LabLog.Resume(first, third)["soak"].ExitCode);
    }

    [Theory]
    [InlineData("@@END s rc=124 wall_ms=9", "", false)]
    [InlineData("@@END s rc=1 wall_ms=9", "stratovirt: vCPU 1: guest triple fault (KVM_EXIT_SHUTDOWN)", true)]
    // A timeout is not one; a q35 resets on a triple fault and can still finish well; a failure without one is the
    // scenario's own.
    [InlineData("@@END s rc=0 wall_ms=9", "vCPU 0: guest triple fault (KVM_EXIT_SHUTDOWN) resets the machine", false)]
    [InlineData("@@END s rc=1 wall_ms=9", "GUEST-TEST-END soak rc=1", false)]
    [InlineData("", "stratovirt: vCPU 1: guest triple fault (KVM_EXIT_SHUTDOWN)", false)]
    public void OnlyAFailureWithANestedTripleFaultCounts(string end, string output, bool tripleFault)
    {
        LabLog log = LabLog.Parse($"@@BEGIN s\n{output}\n{end}\n");
        Assert.Equal(tripleFault, log["s"].FailedWithTripleFault);
    }

    [Fact]
    public void AScenarioFileForARerunRunsOnlyTheNamedScenarios()
    {
        string file = LabSession.ScenarioFile([], only: ["soak-short", "q35-boot"]);
        Assert.Contains("LAB_ONLY='^(soak-short|q35-boot)$'", file.Split('\n').Select(l => l.TrimEnd('\r')));
        Assert.DoesNotContain("LAB_ONLY='^(", LabSession.ScenarioFile([]));
    }
}
