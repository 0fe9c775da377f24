using System.Text.RegularExpressions;

namespace StratoVirt.Tests.Native;

/// <summary>Real KVM VMs running the payload guests through the stratovirt binary (here or in the nested lab).</summary>
[Trait("Level", "Native")]
[Collection("payloads")]
public sealed class PayloadBootTests(PayloadFixture payloads)
{
    private VmmResult Run(string name) => KvmRunner.Run(name, payloads);

    [Theory]
    [InlineData("hello-bin")]
    [InlineData("hello-bzimage")]
    public void HelloPayloadPrintsLogsBootTimeAndResetsWithExitZero(string name)
    {
        var r = Run(name);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Hello from payload", r.Stdout);
        Assert.Matches(@"Guest-boot-time = \d+ us \d+ ms, \d+ CPU us \d+ CPU ms \(monotonic \d+ ns\)", r.Stderr);
        // vCPU 0's first KVM_RUN is logged once, before the guest's boot-timer write.
        Assert.Matches(@"Guest-first-entry-time = \d+ us \d+ ms, \d+ CPU us \d+ CPU ms \(monotonic \d+ ns\)", r.Stderr);
        Assert.Single(Regex.Matches(r.Stderr, "Guest-first-entry-time"));
        Assert.True(r.Stderr.IndexOf("Guest-first-entry-time", StringComparison.Ordinal) < r.Stderr.IndexOf("Guest-boot-time", StringComparison.Ordinal), r.ToString());
        Assert.Contains("guest requested a reset (i8042)", r.Stderr);
        // The payload ran under seccomp: every thread confined (main, finalizer, one vCPU).
        Assert.Contains("seccomp: 3 threads confined", r.Stderr);
    }

    /// <summary>A blocked call is named in one line and stops the VM (128 + SIGSYS), whichever kind of thread made it
    /// (the handler is native code that only writes and exits, which every thread's list allows). The main thread
    /// and the vCPUs make it after the main thread's "confined" line; an iothread confines itself and starts serving
    /// while the machine is still being built, so its call can come before that line.</summary>
    [Theory]
    [InlineData("main", "seccomp: 3 threads confined")]
    [InlineData("vcpu", "seccomp: 4 threads confined")]
    [InlineData("iothread", null)]
    public void ABlockedCallOnEachKindOfThreadIsNamedAndEndsWith159(string thread, string? confined)
    {
        var r = Run($"seccomp-blocked-{thread}");
        Assert.False(r.TimedOut, r.ToString());
        Assert.True(r.ExitCode == 159, r.ToString());
        Assert.Contains("stratovirt: seccomp blocked system call uname (63); stopping the VM\n", r.Stderr);
        if (confined is not null) Assert.Contains(confined, r.Stderr);
    }

    [Fact]
    public void WithoutSeccompTheSameCallIsHarmless()
    {
        var r = Run("seccomp-disabled");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Hello from payload", r.Stdout);
        Assert.DoesNotContain("seccomp", r.Stderr);
    }

    [Fact]
    public void ElfPayloadBootsAtItsEntry()
    {
        var r = Run("hello-elf");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Hello from payload", r.Stdout);
    }

    [Fact]
    public void RtcPayloadReadsTheDate()
    {
        var r = Run("rtc");
        Assert.True(r.ExitCode == 0, r.ToString());
        var m = Regex.Match(r.Stdout, @"RTC (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)");
        Assert.True(m.Success, r.ToString());
        var guest = DateTime.ParseExact(m.Groups[1].Value, "yyyy-MM-dd HH:mm:ss", null);
        // The lab may have run a few minutes before this assertion; a broken RTC gives 2000-00-00 or garbage.
        Assert.InRange(guest, DateTime.UtcNow.AddHours(-1), DateTime.UtcNow.AddMinutes(1));
    }

    [Fact]
    public void SecondVcpuComesUpThroughInitSipi()
    {
        var r = Run("smp2");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("AP up", r.Stdout);
        Assert.Contains("SMP 2 cpus", r.Stdout);
    }

    [Theory]
    [InlineData("smp-1")]
    [InlineData("smp-4")]
    [InlineData("smp-topology")]
    [InlineData("smp-254")]
    [InlineData("large-memory")]
    public void VcpuCountsAndMemorySizesBootTheSamePayload(string name)
    {
        var r = Run(name);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Hello from payload", r.Stdout);
    }

    /// <summary>
    /// A q35 guest booted directly from the payload (flat .bin and bzImage) reads PCI configuration space through
    /// 0xCF8/0xCFC and through ECAM at 0xB000_0000: each lists bus 0 as laid out on the command line, the two agree
    /// on the ID, class and header dwords of all 256 functions, BAR 0 of virtio-blk-pci sizes to its 32 KiB (four
    /// 4 KiB structure pages, the MSI-X table page at 0x4000 and the PBA page, rounded up to a power of two) and is
    /// restored, and the root port answers for bus 1 only once the guest programs its bus numbers.
    /// </summary>
    [Theory]
    [InlineData("q35-pci-probe-bin")]
    [InlineData("q35-pci-probe-bzimage")]
    public void Q35GuestFindsTheSameDevicesThroughPortsAndEcam(string name)
    {
        var r = Run(name);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("PCI-PROBE-DONE", r.Stdout);
        string[] bus0 =
        [
            "00:00.0 8086:29c0 class 060000 hdr 00", // MCH host bridge
            "00:02.0 1b36:000c class 060400 hdr 01", // pcie-root-port
            "00:03.0 1af4:1042 class 010000 hdr 00", // virtio-blk-pci
            "00:04.0 1af4:1044 class 00ff00 hdr 00", // virtio-rng-pci
            "00:1f.0 8086:2918 class 060100 hdr 80", // ICH9 LPC (multi-function bit set)
        ];
        string[] bus1 = ["01:00.0 1af4:1042 class 010000 hdr 00"]; // virtio-blk-pci behind the port
        var lines = r.Stdout.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        foreach (var mechanism in new[] { "CF8", "ECAM" })
        {
            var found = lines.Where(l => l.StartsWith(mechanism + " ", StringComparison.Ordinal))
                .Select(l => l[(mechanism.Length + 1)..]).ToList();
            Assert.Equal([.. bus0, .. bus1], found);
        }
        Assert.DoesNotContain(lines, l => l.StartsWith("DISAGREE", StringComparison.Ordinal));
        Assert.Contains("AGREE bus 00 functions 05", lines);
        Assert.Contains("AGREE bus 01 functions 01", lines);
        Assert.Contains("BAR 00:03.0 0 kind mem64 size 0000000000008000 restored yes", lines);
        Assert.Contains("BRIDGE 00:02.0 cleared bus01 empty", lines);
        Assert.Contains("BRIDGE 00:02.0 buses 00 01 01", lines);
        // Bus 1 was listed only after the bus numbers were programmed.
        Assert.True(lines.IndexOf("BRIDGE 00:02.0 buses 00 01 01") < lines.FindIndex(l => l.StartsWith("CF8 01:", StringComparison.Ordinal)), r.ToString());
    }

    /// <summary>The lines of a QMP lifecycle case that are events of <paramref name="name"/>.</summary>
    private static List<string> Events(VmmResult r, string name) =>
        [.. r.Stdout.Split('\n').Where(l => l.StartsWith($"{{\"event\":\"{name}\"", StringComparison.Ordinal))];

    private static void AssertEndedCleanly(VmmResult r)
    {
        Assert.False(r.TimedOut, r.ToString());
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("QMP-SOCKET removed", r.Stdout);
    }

    [Fact]
    public void QmpStopHoldsTheGuestStillContResumesItAndQuitEndsItWithShutdown()
    {
        var r = Run("qmp-stop-cont-quit");
        AssertEndedCleanly(r);
        Assert.Contains("\"status\":\"paused\"", r.Stdout);
        Assert.Contains("\"status\":\"running\"", r.Stdout);
        Assert.Single(Events(r, "STOP"));
        Assert.Single(Events(r, "RESUME"));
        Assert.Contains("PAUSED-GROWTH 0", r.Stdout);
        var resumed = System.Text.RegularExpressions.Regex.Match(r.Stdout, @"RESUMED-GROWTH (\d+)");
        Assert.True(resumed.Success && long.Parse(resumed.Groups[1].Value) > 0, r.ToString());
        var shutdown = Assert.Single(Events(r, "SHUTDOWN"));
        Assert.StartsWith("""{"event":"SHUTDOWN","data":{"guest":false,"reason":"host-qmp-quit"},""", shutdown);
    }

    [Fact]
    public void QmpSystemResetEndsTheMicroVmWithResetThenShutdown()
    {
        var r = Run("qmp-system-reset");
        AssertEndedCleanly(r);
        const string Data = "\"data\":{\"guest\":false,\"reason\":\"host-qmp-system-reset\"}";
        Assert.StartsWith($"{{\"event\":\"RESET\",{Data},", Assert.Single(Events(r, "RESET")));
        Assert.StartsWith($"{{\"event\":\"SHUTDOWN\",{Data},", Assert.Single(Events(r, "SHUTDOWN")));
        Assert.True(r.Stdout.IndexOf("\"event\":\"RESET\"") < r.Stdout.IndexOf("\"event\":\"SHUTDOWN\""), r.ToString());
    }

    [Fact]
    public void QmpSystemPowerdownEndsTheMicroVmWithPowerdownThenShutdown()
    {
        var r = Run("qmp-system-powerdown");
        AssertEndedCleanly(r);
        Assert.StartsWith("""{"event":"POWERDOWN","timestamp":""", Assert.Single(Events(r, "POWERDOWN")));
        Assert.StartsWith("""{"event":"SHUTDOWN","data":{"guest":false,"reason":"host-qmp-quit"},""",
            Assert.Single(Events(r, "SHUTDOWN")));
        Assert.True(r.Stdout.IndexOf("\"event\":\"POWERDOWN\"") < r.Stdout.IndexOf("\"event\":\"SHUTDOWN\""), r.ToString());
    }

    [Fact]
    public void SigtermTellsTheConnectedClientShutdownHostSignal()
    {
        var r = Run("qmp-sigterm");
        AssertEndedCleanly(r);
        Assert.Contains("CLIENT-EXIT 0", r.Stdout);
        Assert.StartsWith("""{"event":"SHUTDOWN","data":{"guest":false,"reason":"host-signal"},""",
            Assert.Single(Events(r, "SHUTDOWN")));
    }

    [Fact]
    public void DaemonizeReturnsOnceTheVmIsReadyAndCleansUpAtExit()
    {
        var r = Run("daemonize");
        AssertEndedCleanly(r);
        Assert.Equal("", r.Stderr);
        foreach (string line in new[] { "PARENT-EXIT 0", "READY-SOCKET yes", "DAEMON-ALIVE yes", "DAEMON-SESSION own",
                     "DAEMON-GONE yes", "PIDFILE removed" })
            Assert.Contains(line, r.Stdout);
        Assert.StartsWith("""{"event":"SHUTDOWN","data":{"guest":false,"reason":"host-qmp-quit"},""",
            Assert.Single(Events(r, "SHUTDOWN")));
    }

    [Fact]
    public void TripleFaultEndsWithOneClearLineAndNonZeroExit()
    {
        var r = Run("fault");
        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("stratovirt: vCPU 0: guest triple fault (KVM_EXIT_SHUTDOWN)", r.Stderr.Trim());
    }

    [Fact]
    public void UnclaimedMmioReadsAsAllOnes()
    {
        var r = Run("mmio-probe");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("MMIO ff", r.Stdout);
    }

    [Fact]
    public void DevKvmWithoutPermissionIsOneClearLine()
    {
        var r = Run("no-permission");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("stratovirt: no permission to open /dev/kvm (add the user to the kvm group or run as root)", r.Stderr.Trim());
    }

    [Fact]
    public void SigtermEndsTheVmCleanly()
    {
        var r = Run("sigterm");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Guest-boot-time", r.Stderr);
        Assert.Contains("terminated by signal SIGTERM", r.Stderr);
    }
}
