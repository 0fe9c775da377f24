using Xunit.Abstractions;

namespace StratoVirt.Tests.Lab;

/// <summary>Debian's stock cloud kernel booted by stratovirt inside the nested lab.</summary>
[Trait("Level", "Lab")]
public sealed class LinuxBootTests(ITestOutputHelper output)
{
    private LabScenario Boot(string name) => LabSession.Instance.Ended(name, output);

    [Theory]
    [InlineData("linux-1cpu-poweroff", 1, 256)]
    [InlineData("linux-2cpu-reboot", 2, 256)]
    [InlineData("linux-4cpu-poweroff", 4, 512)]
    [InlineData("linux-elf-poweroff", 2, 256)]
    public void KernelReachesInitWithItsCpusAndMemoryAndEndsWithExitZero(string name, int cpus, int memoryMiB)
    {
        var s = Boot(name);
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.NotNull(s.GuestUptimeAtInit);
        Assert.StartsWith("Linux ", s.GuestMarker("GUEST-UNAME"));
        Assert.Equal(cpus.ToString(), s.GuestMarker("GUEST-CPUS"));
        long memKb = long.Parse(s.GuestMarker("GUEST-MEMTOTAL-KB")!);
        // MemTotal is RAM less what the kernel reserves for itself: between 75% and 100% of -m.
        Assert.InRange(memKb, memoryMiB * 1024L * 3 / 4, memoryMiB * 1024L);
        Assert.Contains($"smp: Brought up 1 node, {cpus} CPU", s.Text);
    }

    [Theory]
    [InlineData("linux-1cpu-poweroff")]
    [InlineData("linux-4cpu-poweroff")]
    public void TheConsolesBytesAreQueuedByKvmInsteadOfEachExiting(string name)
    {
        var s = Boot(name);
        // The kernel prints some 20,000 bytes, each after a line status poll: nearly all of them go through the
        // ring, and they reach the console whole and in order (the lines the other tests look for are there).
        s.AssertSerialWritesQueued(10_000);
        Assert.True(s.OutputContains("Run /init as init process"), s.Text);
        Assert.True(s.OutputContains("smp: Brought up 1 node"), s.Text);
    }

    [Fact]
    public void PoweroffEndsTheVmThroughAcpi()
    {
        var s = Boot("linux-1cpu-poweroff");
        Assert.Equal(0, s.ExitCode);
        Assert.True(s.OutputContains("guest powered off (ACPI S5)"), s.Text);
    }

    [Theory]
    [InlineData("linux-2cpu-reboot")]
    [InlineData("linux-acpi-off-reboot")]
    public void RebootEndsTheVmThroughTheI8042(string name)
    {
        var s = Boot(name);
        Assert.Equal(0, s.ExitCode);
        Assert.True(s.OutputContains("guest requested a reset (i8042)"), s.Text);
    }

    [Fact]
    public void GuestClockComesFromTheCmosRtc()
    {
        var s = Boot("linux-1cpu-poweroff");
        LabSession.Instance.AssertDuringSession(long.Parse(s.GuestMarker("GUEST-DATE")!));
        Assert.True(s.OutputContains("rtc_cmos 00:01: registered as rtc0"), s.Text);
        Assert.False(s.OutputContains("probe of rtc_cmos failed"), s.Text);
    }

    [Fact]
    public void BootTimerLogsTheTimeToInit()
    {
        var s = Boot("linux-1cpu-poweroff");
        Assert.Contains(s.Output, l => l.Contains("Guest-boot-time = ") && l.Contains(" CPU ms"));
    }

    [Fact]
    public void AcpiOffStillBootsAsKataConfiguresIt()
    {
        // Debian's kernel has no MP-table parser (X86_MPPARSE is off), so acpi=off means one CPU: Kata's flags still boot.
        var s = Boot("linux-acpi-off-reboot");
        Assert.Equal("1", s.GuestMarker("GUEST-CPUS"));
    }

    [Fact]
    public void SerialConsoleShellRunsTypedCommands()
    {
        var s = Boot("linux-shell");
        Assert.True(s.ExitCode == 0, s.Text);
        Assert.True(s.OutputContains("typed-42"), s.Text);
        Assert.Contains(s.Output, l => l.StartsWith("Linux ") && l.Contains("x86_64"));
    }
}
