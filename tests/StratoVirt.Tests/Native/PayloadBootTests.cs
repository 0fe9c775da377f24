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
        Assert.Contains("guest requested a reset (i8042)", r.Stderr);
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
